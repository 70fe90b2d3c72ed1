//! policy-publish end to end: the command against a real registry (Debian's `docker-registry`,
//! started on 127.0.0.1 on a free port with a temporary storage folder, stopped when the test
//! ends), and the ArtifactHub files against the repository's.

mod artifacthub;
mod errors;
mod roundtrip;
mod signing;
mod support;
