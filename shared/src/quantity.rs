//! Kubernetes resource quantities (`1Gi`, `1024Mi`, `500M`, plain bytes) as byte counts, so
//! sizes written different ways compare equal.

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
}
