//! Published RFC 6962 test vectors, copied as data from transparency-dev/merkle,
//! `proof/verify_test.go` (the `leaves`, `roots`, `inclusionProofs` and `consistencyProofs`
//! tables, themselves from the RFC 6962 reference tests of Certificate Transparency): the
//! eight leaves, the root of every tree of 1 to 8 of them, and the inclusion and
//! consistency proofs the reference produces. Our tree must produce exactly these.

#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

fn hash(text: &str) -> Hash {
    hex(text).try_into().unwrap()
}

/// `leaves`: the leaf inputs (not hashes).
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `roots`: the root of the tree of the first `i + 1` leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `inclusionProofs`: (leaf, 1-based as in the source; tree size; audit path).
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `consistencyProofs`: (old size, new size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// The eight-leaf tree, every hash stored as an append stores it.
fn reference_tree() -> (Vec<Hash>, StoredHashes) {
    let mut frontier = Frontier::default();
    let mut stored = StoredHashes::default();
    let mut roots = Vec::new();
    for (n, input) in (0u64..).zip(LEAVES) {
        let start = leaf_stored_index(n);
        let leaf_hash = tlog::record_hash(&hex(input)).0;
        for (offset, hash) in (0u64..).zip(frontier.push(leaf_hash)) {
            stored.0.insert(start + offset, hash);
        }
        roots.push(frontier.root());
    }
    (roots, stored)
}

#[test]
fn roots_match_the_reference() {
    let (roots, stored) = reference_tree();
    for (size, expected) in (1u64..).zip(ROOTS) {
        assert_eq!(roots[(size - 1) as usize], hash(expected), "root of {size}");
        assert_eq!(
            root(size, &stored).unwrap(),
            hash(expected),
            "stored root of {size}"
        );
    }
}

#[test]
fn inclusion_proofs_match_the_reference() {
    let (_, stored) = reference_tree();
    for (leaf, size, expected) in INCLUSION {
        let proof = inclusion_proof(size, leaf - 1, &stored).unwrap();
        let expected: Vec<Hash> = expected.iter().map(|h| hash(h)).collect();
        assert_eq!(proof, expected, "leaf {leaf} of {size}");
    }
}

#[test]
fn consistency_proofs_match_the_reference() {
    let (_, stored) = reference_tree();
    for (old, new, expected) in CONSISTENCY {
        let proof = consistency_proof(old, new, &stored).unwrap();
        let expected: Vec<Hash> = expected.iter().map(|h| hash(h)).collect();
        assert_eq!(proof, expected, "{old} → {new}");
    }
}
