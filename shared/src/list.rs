//! Reading many objects the way `kubectl get` does: one paged list per kind and namespace
//! (`limit`/`continue`, kubectl's `--chunk-size=500`), never one request per object; each page
//! is retried within the default retry budget.

use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

/// Page size, as kubectl uses for `get` (`--chunk-size=500`).
pub const PAGE: u32 = 500;

/// Lists every object `api` reaches, page by page. `what` and `scope` name the kind and the
/// namespace (or "the cluster") in the error.
pub async fn list_all<K>(api: Api<K>, what: &str, scope: &str) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    list_matching(api, ListParams::default(), what, scope).await
}

/// Like [`list_all`], with a label or field selector already set in `params`.
pub async fn list_matching<K>(
    api: Api<K>,
    params: ListParams,
    what: &str,
    scope: &str,
) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(list_versioned(api, params, what, scope).await?.0)
}

/// Like [`list_matching`], with the list's resourceVersion (that of its first page, which the
/// later pages continue), from which [`crate::watch::Changes`] follows what changes next.
pub async fn list_versioned<K>(
    api: Api<K>,
    params: ListParams,
    what: &str,
    scope: &str,
) -> anyhow::Result<(Vec<K>, String)>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut version: Option<String> = None;
    let mut token: Option<String> = None;
    loop {
        let mut page_params = params.clone().limit(PAGE);
        if let Some(t) = &token {
            page_params = page_params.continue_token(t);
        }
        let page = crate::cluster::retry(&format!("cannot list {what} in {scope}"), || {
            api.list(&page_params)
        })
        .await?;
        out.extend(page.items);
        if version.is_none() {
            version = page.metadata.resource_version.clone();
        }
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => return Ok((out, version.unwrap_or_default())),
        }
    }
}

/// Every custom resource of `api_version`/`kind` in `namespace`, as JSON with `apiVersion` and
/// `kind` set. `None` when the cluster does not serve that kind (its CRD is not installed).
pub async fn custom_resources(
    client: &kube::Client,
    namespace: &str,
    api_version: &str,
    kind: &str,
) -> anyhow::Result<Option<Vec<serde_json::Value>>> {
    use kube::api::DynamicObject;
    use kube::core::GroupVersionKind;

    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let Ok((resource, _)) = kube::discovery::pinned_kind(client, &gvk).await else {
        return Ok(None);
    };
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
    let mut out = Vec::new();
    for object in list_all(api, &resource.plural, namespace).await? {
        let mut value = serde_json::to_value(&object)?;
        value["apiVersion"] = api_version.into();
        value["kind"] = kind.into();
        out.push(value);
    }
    Ok(Some(out))
}
