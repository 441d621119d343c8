//! Preconditions of a copy that live in the cluster, checked before its first change: the
//! destination namespace and the storage class of a claim to create must exist. A missing one
//! is bad input (exit 2), named as the API server names it.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::Api;
use upgrade_shared::cluster::{Cluster, retry};

/// The namespace of `cluster` exists.
pub(super) async fn namespace(cluster: &Cluster) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(cluster.client.clone());
    let ns = cluster.namespace.as_str();
    match retry(&format!("cannot read namespace {ns}"), || api.get_opt(ns)).await? {
        Some(_) => Ok(()),
        None => anyhow::bail!(
            "namespaces \"{ns}\" not found: create it first (kubectl create namespace {ns}); nothing was changed"
        ),
    }
}

/// A storage class exists.
pub(super) async fn storage_class(cluster: &Cluster, class: &str) -> anyhow::Result<()> {
    let api: Api<StorageClass> = Api::all(cluster.client.clone());
    match retry(&format!("cannot read storageclass {class}"), || {
        api.get_opt(class)
    })
    .await?
    {
        Some(_) => Ok(()),
        None => anyhow::bail!(
            "storageclasses \"{class}\" not found: pass an existing class with --storage-class; nothing was changed"
        ),
    }
}
