//! Listing: selectors, `limit` and `continue` tokens (opaque to clients, like etcd keys).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ListOptions, Result, Store, with_version};
use crate::sim::errors::ApiError;
use crate::sim::resources::ResourceInfo;

impl Store {
    /// Objects matching the options, as a `<Kind>List`.
    pub fn list(&self, ri: &ResourceInfo, ns: Option<&str>, opts: &ListOptions) -> Result<Value> {
        let st = self.lock();
        let empty = BTreeMap::new();
        let bucket = st.objects.get(&ri.key()).unwrap_or(&empty);
        let start = match &opts.cont {
            Some(c) => Some(decode_continue(c)?),
            None => None,
        };
        let mut items = Vec::new();
        let mut next = None;
        let mut last: Option<(&str, &str)> = None;
        let mut remaining = 0u64;
        for ((ons, oname), obj) in bucket {
            if ns.is_some_and(|n| n != ons) {
                continue;
            }
            if start
                .as_ref()
                .is_some_and(|(sns, sname)| (ons, oname) <= (sns, sname))
            {
                continue;
            }
            if !opts.labels.matches(&obj["metadata"]["labels"]) || !opts.fields.matches(obj) {
                continue;
            }
            if opts.limit > 0 && items.len() == opts.limit {
                if next.is_none()
                    && let Some((lns, lname)) = last
                {
                    next = Some(encode_continue(st.rv, lns, lname));
                }
                remaining += 1;
                continue;
            }
            last = Some((ons, oname));
            items.push(with_version(obj.clone(), ri));
        }
        let mut metadata = json!({ "resourceVersion": st.rv.to_string() });
        if let Some(n) = next {
            metadata["continue"] = json!(n);
            metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(
            json!({ "kind": format!("{}List", ri.kind), "apiVersion": ri.api_version(), "metadata": metadata, "items": items }),
        )
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"rv": rv, "ns": ns, "name": name}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String)> {
    use base64::Engine;
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v["ns"].as_str().unwrap_or_default().into(),
        v["name"].as_str().unwrap_or_default().into(),
    ))
}
