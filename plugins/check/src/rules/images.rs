//! Database images: a floating tag (`mysql:8`) that resolved to a newer server than the target
//! pins (`mysql:8.0.28`) is a downgrade of the data directory, which MySQL does not support.

use upgrade_shared::profile::{ImagePin, Outcome, range_matches};
use upgrade_shared::version::{Tag, image_name, split_image};

use crate::context::Context;
use crate::finding::{Finding, Severity};

fn pinned_at<'a>(pin: &'a ImagePin, version: &upgrade_shared::version::Version) -> Option<&'a str> {
    pin.tags
        .iter()
        .find(|t| range_matches(&t.versions.value, version))
        .map(|t| t.tag.as_str())
}

pub(super) fn pinned_images(ctx: &Context<'_>, findings: &mut Vec<Finding>) {
    for pin in &ctx.profile.image_pins {
        let Some(component) = ctx.profile.component(&pin.component) else {
            continue;
        };
        // Without persistence every upgrade starts on an empty data directory.
        if ctx.mode_of(component) == upgrade_shared::profile::Mode::None {
            continue;
        }
        let running: Option<(String, &str)> = ctx
            .workloads_of(component)
            .iter()
            .filter_map(|w| w.template.and_then(|t| t.spec.as_ref()))
            .flat_map(|s| s.containers.iter())
            .filter_map(|c| c.image.as_deref())
            .find(|img| image_name(split_image(img).0) == pin.image)
            .map(|img| (img.to_string(), "running"));
        let (current, source) = match running {
            Some((img, src)) => (split_image(&img).1.to_string(), src),
            None => match pinned_at(pin, &ctx.from) {
                Some(tag) => (tag.to_string(), "pinned by the chart"),
                None => continue,
            },
        };
        let target = crate::rules::manifests::target_image(ctx, component, &pin.image)
            .map(|img| split_image(&img).1.to_string())
            .or_else(|| pinned_at(pin, &ctx.to).map(str::to_string));
        let Some(target) = target else { continue };
        let reinstall = ctx.reinstall();
        let impact = if reinstall {
            Outcome::NeedsSteps
        } else {
            Outcome::Blocked
        };
        let remediation = if reinstall {
            "the runbook moves the data by a data-only dump into a fresh install instead of upgrading in place".to_string()
        } else {
            format!(
                "do not upgrade in place: dump the data, install the target fresh and import it, or keep {}:{} until a target pins a newer one",
                pin.image, current
            )
        };
        let (cur, tgt) = (Tag::parse(&current), Tag::parse(&target));
        let message = match (&cur, &tgt) {
            (Tag::Exact(c), Tag::Exact(t)) if c.cmp_numbers(t).is_gt() => format!(
                "{}:{current} ({source}) is newer than {}:{target} that {} pins: the database would be downgraded, which {} does not support",
                pin.image,
                pin.image,
                ctx.display(&ctx.to),
                pin.image
            ),
            (Tag::Partial(c), Tag::Exact(t)) if c.covers(t) => format!(
                "{}:{current} ({source}) is a floating tag that may have pulled a server newer than {}:{target}, which {} pins: that would be a downgrade of the data directory",
                pin.image,
                pin.image,
                ctx.display(&ctx.to)
            ),
            (Tag::Floating(_), Tag::Exact(_)) => format!(
                "{}:{current} ({source}) floats to whatever is newest; {} pins {}:{target}, possibly a downgrade of the data directory",
                pin.image,
                ctx.display(&ctx.to),
                pin.image
            ),
            _ => continue,
        };
        findings.push(Finding {
            severity: Severity::Critical,
            component: component.name.clone(),
            code: "database-image-downgrade".into(),
            message,
            remediation,
            evidence: vec![
                format!("image {}:{current}", pin.image),
                format!("target {}:{target}", pin.image),
            ],
            impact,
        });
    }
}
