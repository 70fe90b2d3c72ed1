//! The four pod lists an injection adds to (`initContainers`, `containers`, `volumes`,
//! `imagePullSecrets`), and [`PodLists`], one value per list.
//!
//! Rendered entries, the status annotation's names, Istio's well-known names and the fill
//! recipe are all "something per list": they share this one shape, so a list can neither be
//! forgotten nor mistaken for another (a `match` on [`PodList`] has no fallthrough).

use std::fmt;

/// One of the pod lists an injection adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodList {
    /// `spec.initContainers`.
    InitContainers,
    /// `spec.containers`.
    Containers,
    /// `spec.volumes`.
    Volumes,
    /// `spec.imagePullSecrets`.
    ImagePullSecrets,
}

impl PodList {
    /// Every list, in merge order (the order of Istio's status annotation).
    pub const ALL: [PodList; 4] = [
        PodList::InitContainers,
        PodList::Containers,
        PodList::Volumes,
        PodList::ImagePullSecrets,
    ];

    /// The list's field name in a pod spec (and in rendered templates): `initContainers`.
    pub const fn field(self) -> &'static str {
        match self {
            PodList::InitContainers => "initContainers",
            PodList::Containers => "containers",
            PodList::Volumes => "volumes",
            PodList::ImagePullSecrets => "imagePullSecrets",
        }
    }

    /// The list's path in a pod, as messages name it: `spec.initContainers`.
    pub const fn path(self) -> &'static str {
        match self {
            PodList::InitContainers => "spec.initContainers",
            PodList::Containers => "spec.containers",
            PodList::Volumes => "spec.volumes",
            PodList::ImagePullSecrets => "spec.imagePullSecrets",
        }
    }
}

impl fmt::Display for PodList {
    /// The field name, `initContainers`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// One `T` per pod list. The fields are public so that code about one list reads plainly
/// (`entries.containers`); code about every list goes through [`PodLists::iter`] or
/// [`PodLists::get`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodLists<T> {
    /// For `spec.initContainers`.
    pub init_containers: T,
    /// For `spec.containers`.
    pub containers: T,
    /// For `spec.volumes`.
    pub volumes: T,
    /// For `spec.imagePullSecrets`.
    pub image_pull_secrets: T,
}

impl<T> PodLists<T> {
    /// Builds each list's value from the list.
    pub fn from_fn(mut f: impl FnMut(PodList) -> T) -> Self {
        Self {
            init_containers: f(PodList::InitContainers),
            containers: f(PodList::Containers),
            volumes: f(PodList::Volumes),
            image_pull_secrets: f(PodList::ImagePullSecrets),
        }
    }

    /// The value for `list`.
    pub fn get(&self, list: PodList) -> &T {
        match list {
            PodList::InitContainers => &self.init_containers,
            PodList::Containers => &self.containers,
            PodList::Volumes => &self.volumes,
            PodList::ImagePullSecrets => &self.image_pull_secrets,
        }
    }

    /// The value for `list`, to change.
    pub fn get_mut(&mut self, list: PodList) -> &mut T {
        match list {
            PodList::InitContainers => &mut self.init_containers,
            PodList::Containers => &mut self.containers,
            PodList::Volumes => &mut self.volumes,
            PodList::ImagePullSecrets => &mut self.image_pull_secrets,
        }
    }

    /// Each list with its value, in merge order.
    pub fn iter(&self) -> impl Iterator<Item = (PodList, &T)> {
        PodList::ALL
            .into_iter()
            .map(move |list| (list, self.get(list)))
    }

    /// Each list with its value, owned, in merge order.
    pub fn into_array(self) -> [(PodList, T); 4] {
        [
            (PodList::InitContainers, self.init_containers),
            (PodList::Containers, self.containers),
            (PodList::Volumes, self.volumes),
            (PodList::ImagePullSecrets, self.image_pull_secrets),
        ]
    }

    /// Each list's value turned into another.
    pub fn map<U>(self, mut f: impl FnMut(PodList, T) -> U) -> PodLists<U> {
        let [a, b, c, d] = self.into_array().map(|(list, value)| f(list, value));
        PodLists {
            init_containers: a,
            containers: b,
            volumes: c,
            image_pull_secrets: d,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_list_has_its_own_slot() {
        let lists = PodLists::from_fn(PodList::field);
        for (list, field) in lists.iter() {
            assert_eq!(*field, list.field());
            assert_eq!(list.path(), format!("spec.{field}"));
        }
        let lengths = lists.map(|_, field| field.len());
        assert_eq!(lengths.image_pull_secrets, "imagePullSecrets".len());
    }
}
