//! Kubernetes resource quantities (`1Gi`, `1024Mi`, `500M`, plain bytes) as byte counts, so
//! sizes written different ways compare equal; and byte counts printed the way claims write
//! their sizes (`20Gi`, `1.5Mi`), the one formatter every plugin's messages use.

/// The bytes a quantity names, for the binary and decimal suffixes storage sizes use; `None`
/// for anything else (fractions, milli-units, exponents).
pub fn bytes(quantity: &str) -> Option<u128> {
    const UNITS: [(&str, u128); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    let q = quantity.trim();
    for (suffix, factor) in UNITS {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<u128>().ok().and_then(|n| n.checked_mul(factor));
        }
    }
    q.parse::<u128>().ok()
}

/// A byte count for people, in the binary units claims are written in: `20Gi`, `1.5Gi`,
/// `12.3Mi`, `512 B`. One decimal, left out when it is zero.
pub fn human(bytes: impl Into<u128>) -> String {
    const UNITS: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let bytes: u128 = bytes.into();
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut unit = 0;
    let mut scale: u128 = 1024;
    while unit + 1 < UNITS.len() && bytes >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    // Tenths, rounded half up, in integers so that large counts lose nothing.
    let tenths = (bytes * 10 + scale / 2) / scale;
    let (whole, tenth) = (tenths / 10, tenths % 10);
    if tenth == 0 {
        format!("{whole}{}", UNITS[unit])
    } else {
        format!("{whole}.{tenth}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_size_written_differently_is_the_same_number() {
        assert_eq!(bytes("1Gi"), bytes("1024Mi"));
        assert_eq!(bytes("10Mi"), Some(10 << 20));
        assert_eq!(bytes("5G"), Some(5_000_000_000));
        assert_eq!(bytes("512"), Some(512));
        assert_eq!(bytes(" 2Ki "), Some(2048));
        for bad in ["lots", "1.5Gi", "", "Gi", "-1Mi"] {
            assert_eq!(bytes(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn byte_counts_print_in_the_units_claims_use() {
        assert_eq!(human(0u64), "0 B");
        assert_eq!(human(512u64), "512 B");
        assert_eq!(human(1024u64), "1Ki");
        assert_eq!(human(1536u64), "1.5Ki");
        assert_eq!(human(20u64 << 30), "20Gi");
        assert_eq!(human((3u64 << 29) + 1), "1.5Gi");
        assert_eq!(human(12_900_000u64), "12.3Mi");
        assert_eq!(human(1023u64 << 20), "1023Mi");
        assert_eq!(human(bytes("1Ti").unwrap()), "1Ti");
        assert_eq!(human(u128::from(u64::MAX)), "16Ei");
    }
}
