//! The one hash the agent persists or shares between hosts: FNV-1a, the same in every
//! process, release and host (std's hasher is seeded per process). It derives port MAC
//! addresses and agent tags that two agents must agree on, and the fingerprints of loaded
//! connections that an agent restart reads back.

/// FNV-1a (64 bits) of `text`.
pub fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_fnv_1a() {
        // The published FNV-1a 64-bit values of "" and "a".
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
