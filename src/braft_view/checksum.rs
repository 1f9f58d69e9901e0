//! braft's two per-record checksums (braft-format.md §5.3): type 0 is MurmurHash3_x86_32
//! with seed 0 (written here, from the algorithm's description), type 1 is CRC-32C
//! (Castagnoli), unmasked (the `crc32c` crate). Any other type number has no checksum, so a
//! header naming one never verifies.

/// The checksum of `data` under braft's checksum type `kind`, or `None` for an unknown type.
pub fn checksum(kind: u8, data: &[u8]) -> Option<u32> {
    match kind {
        0 => Some(murmur3_32(data)),
        1 => Some(crc32c::crc32c(data)),
        _ => None,
    }
}

/// MurmurHash3_x86_32 with seed 0: 4-byte little-endian blocks mixed with the constants
/// 0xcc9e2d51 and 0x1b873593, the tail mixed the same way, the total length folded in, then
/// the fmix32 finaliser.
pub fn murmur3_32(data: &[u8]) -> u32 {
    fn scramble(k: u32) -> u32 {
        k.wrapping_mul(0xcc9e_2d51).rotate_left(15).wrapping_mul(0x1b87_3593)
    }
    let mut hash: u32 = 0;
    let mut blocks = data.chunks_exact(4);
    for block in blocks.by_ref() {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        hash ^= scramble(k);
        hash = hash.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let k = rest.iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        hash ^= scramble(k);
    }
    hash ^= data.len() as u32;
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^ (hash >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // braft-format.md §5.3 and §5.8.
        assert_eq!(murmur3_32(b"hello"), 0x248b_fa47);
        assert_eq!(murmur3_32(b""), 0);
        assert_eq!(checksum(1, b"123456789"), Some(0xE306_9283));
        assert_eq!(checksum(1, b""), Some(0));
        assert_eq!(checksum(2, b"x"), None);
    }
}
