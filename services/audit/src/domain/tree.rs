//! A workspace's RFC 6962 Merkle tree as the database stores it, and its proofs.
//!
//! Hashes are stored in the linear order of Go sumdb's `tlog` (Crosby and Wallach §3.3):
//! leaf `n`'s hash at `stored_hash_index(0, n)`, followed by the hashes of the complete
//! subtrees it completes. So a leaf appends its hashes right after its predecessor's (rows
//! are only ever added, in index order), a proof or a root is a handful of indexed reads
//! (at most 2·log₂ n hashes), and the whole tree reads back in one range scan. The index
//! math and the proofs are `tlog_tiles` (cloudflare/azul, a port of Go's `sumdb/tlog`);
//! this module adds the frontier (the right edge of the tree, all an append needs) and
//! the bridge from its synchronous `HashReader` to an asynchronous store: the indexes a
//! proof needs depend on the sizes alone, so they are learnt first, read, then proven.

use std::cell::RefCell;
use std::collections::HashMap;

use tlog_tiles::tlog::{self, HashReader};

pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing.
pub const EMPTY_ROOT: Hash = tlog::EMPTY_HASH.0;

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    tlog::node_hash(tlog::Hash(left), tlog::Hash(right)).0
}

/// A leaf index, tree size or stored index as a BIGINT column holds it. They stay far below
/// `i64::MAX` (stored indexes below twice the leaves); saturating keeps a corrupt one from
/// wrapping.
pub fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Where leaf `n`'s hash is stored; the hashes of leaves `[0, n)` fill the indexes below.
pub fn leaf_stored_index(n: u64) -> u64 {
    tlog::stored_hash_index(0, n)
}

/// The right edge of a tree: the roots of the maximal complete subtrees covering its
/// leaves, largest (leftmost) first. Appending a leaf needs nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (level, hash), levels strictly decreasing.
    stack: Vec<(u8, Hash)>,
}

impl Frontier {
    /// The stored indexes of the frontier of a tree of `size` leaves, in frontier order.
    pub fn indexes(size: u64) -> Vec<u64> {
        tlog::sub_tree_index(0, size, Vec::new())
    }

    /// The frontier of a tree of `size` leaves from the hashes stored at
    /// [`Frontier::indexes`]`(size)`, in that order.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Result<Self, String> {
        let levels: Vec<u8> = (0..64u8).rev().filter(|bit| size >> bit & 1 == 1).collect();
        if levels.len() != hashes.len() {
            return Err(format!(
                "a tree of {size} leaves has {} frontier hashes, not {}",
                levels.len(),
                hashes.len()
            ));
        }
        Ok(Self {
            size,
            stack: levels.into_iter().zip(hashes.iter().copied()).collect(),
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf and answers the hashes to store from
    /// `leaf_stored_index(old size)` on: the leaf's, then each subtree it completes.
    pub fn push(&mut self, leaf_hash: Hash) -> Vec<Hash> {
        let mut stored = vec![leaf_hash];
        let mut hash = leaf_hash;
        let mut level = 0u8;
        while let Some(&(top, left)) = self.stack.last() {
            if top != level {
                break;
            }
            self.stack.pop();
            hash = node_hash(left, hash);
            level += 1;
            stored.push(hash);
        }
        self.stack.push((level, hash));
        self.size += 1;
        stored
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev().map(|(_, hash)| *hash);
        let Some(mut root) = subtrees.next() else {
            return EMPTY_ROOT;
        };
        for left in subtrees {
            root = node_hash(left, root);
        }
        root
    }
}

/// Stored hashes read for one proof or root, by stored index.
#[derive(Clone, Debug, Default)]
pub struct StoredHashes(pub HashMap<u64, Hash>);

impl HashReader for StoredHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        indexes
            .iter()
            .map(|index| {
                self.0
                    .get(index)
                    .map(|hash| tlog::Hash(*hash))
                    .ok_or(tlog::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// Learns which indexes a `tlog_tiles` computation reads, answering zeros.
#[derive(Default)]
struct Recorder(RefCell<Vec<u64>>);

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![tlog::Hash::default(); indexes.len()])
    }
}

fn recorded(run: impl FnOnce(&Recorder) -> Result<(), tlog::Error>) -> Result<Vec<u64>, String> {
    let recorder = Recorder::default();
    run(&recorder).map_err(|error| error.to_string())?;
    Ok(recorder.0.into_inner())
}

fn hashes(proof: Vec<tlog::Hash>) -> Vec<Hash> {
    proof.into_iter().map(|hash| hash.0).collect()
}

/// The stored indexes the root of a tree of `size` leaves is computed from.
pub fn root_indexes(size: u64) -> Vec<u64> {
    Frontier::indexes(size)
}

pub fn root(size: u64, stored: &StoredHashes) -> Result<Hash, String> {
    tlog::tree_hash(size, stored)
        .map(|hash| hash.0)
        .map_err(|error| error.to_string())
}

/// The stored indexes the inclusion proof of `leaf` in a tree of `size` reads.
pub fn inclusion_indexes(size: u64, leaf: u64) -> Result<Vec<u64>, String> {
    recorded(|reader| tlog::prove_record(size, leaf, reader).map(|_| ()))
}

/// The audit path of `leaf` in the tree of `size` leaves, leaf to root (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(size: u64, leaf: u64, stored: &StoredHashes) -> Result<Vec<Hash>, String> {
    tlog::prove_record(size, leaf, stored)
        .map(hashes)
        .map_err(|error| error.to_string())
}

/// The stored indexes the consistency proof from `old_size` to `new_size` reads.
pub fn consistency_indexes(old_size: u64, new_size: u64) -> Result<Vec<u64>, String> {
    recorded(|reader| tlog::prove_tree(new_size, old_size, reader).map(|_| ()))
}

/// The consistency proof from the tree of `old_size` to that of `new_size` (RFC 9162
/// §2.1.4.1); empty when they are equal.
pub fn consistency_proof(
    old_size: u64,
    new_size: u64,
    stored: &StoredHashes,
) -> Result<Vec<Hash>, String> {
    tlog::prove_tree(new_size, old_size, stored)
        .map(hashes)
        .map_err(|error| error.to_string())
}

#[cfg(test)]
#[path = "tree_vectors.rs"]
mod vectors;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn leaf(n: u64) -> Hash {
        tlog::record_hash(&n.to_be_bytes()).0
    }

    /// The tree of `size` leaves built leaf by leaf, with every hash it stored.
    fn build(size: u64) -> (Frontier, StoredHashes) {
        let mut frontier = Frontier::default();
        let mut stored = StoredHashes::default();
        for n in 0..size {
            let start = leaf_stored_index(n);
            for (offset, hash) in (0u64..).zip(frontier.push(leaf(n))) {
                stored.0.insert(start + offset, hash);
            }
        }
        (frontier, stored)
    }

    #[test]
    fn the_frontier_stores_what_tlog_stores_and_agrees_on_every_root() {
        let (_, stored) = build(100);
        let mut storage: Vec<tlog::Hash> = Vec::new();
        for n in 0..100u64 {
            let reader = StoredHashes((0u64..).zip(storage.iter().map(|h| h.0)).collect());
            let expected = tlog::stored_hashes(n, &n.to_be_bytes(), &reader).unwrap();
            assert_eq!(storage.len() as u64, leaf_stored_index(n));
            storage.extend(expected);
        }
        assert_eq!(stored.0.len(), storage.len());
        for (index, hash) in storage.iter().enumerate() {
            assert_eq!(stored.0[&(index as u64)], hash.0, "stored hash {index}");
        }
        for size in 0..100u64 {
            let (frontier, _) = build(size);
            assert_eq!(frontier.root(), root(size, &stored).unwrap(), "size {size}");
            let read: Vec<Hash> = Frontier::indexes(size)
                .iter()
                .map(|index| stored.0[index])
                .collect();
            let reloaded = Frontier::from_hashes(size, &read).unwrap();
            assert_eq!(reloaded, frontier, "size {size}");
        }
    }

    #[test]
    fn proofs_read_only_what_their_indexes_name() {
        let (frontier, stored) = build(77);
        let root77 = frontier.root();
        for leaf_index in [0u64, 1, 38, 63, 64, 76] {
            let indexes = inclusion_indexes(77, leaf_index).unwrap();
            let subset = StoredHashes(indexes.iter().map(|i| (*i, stored.0[i])).collect());
            let proof = inclusion_proof(77, leaf_index, &subset).unwrap();
            let proof: Vec<tlog::Hash> = proof.into_iter().map(tlog::Hash).collect();
            tlog::check_record(
                &proof,
                77,
                tlog::Hash(root77),
                leaf_index,
                tlog::Hash(leaf(leaf_index)),
            )
            .unwrap();
        }
        for old in [1u64, 2, 13, 64, 77] {
            let indexes = consistency_indexes(old, 77).unwrap();
            let subset = StoredHashes(indexes.iter().map(|i| (*i, stored.0[i])).collect());
            let proof = consistency_proof(old, 77, &subset).unwrap();
            let old_root = root(old, &stored).unwrap();
            let proof: Vec<tlog::Hash> = proof.into_iter().map(tlog::Hash).collect();
            tlog::check_tree(&proof, 77, tlog::Hash(root77), old, tlog::Hash(old_root)).unwrap();
        }
        assert!(inclusion_indexes(5, 5).is_err());
        assert!(consistency_indexes(0, 5).is_err());
        assert!(consistency_indexes(6, 5).is_err());
        assert!(inclusion_proof(77, 3, &StoredHashes::default()).is_err());
    }

    #[test]
    fn a_frontier_needs_one_hash_per_set_bit() {
        assert!(Frontier::from_hashes(5, &[[0; 32]]).is_err());
        assert_eq!(Frontier::from_hashes(0, &[]).unwrap().root(), EMPTY_ROOT);
    }
}
