//! A verifier outside the service, as a consumer of the log would write it: RFC 9162's
//! verification algorithms (§2.1.3.2 inclusion, §2.1.4.2 consistency) written from the
//! RFC's steps, sharing no code with the service's tree, and checkpoint signatures checked
//! with `signed_note` (a port of Go's sumdb note) given only the verifier key.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(leaf_data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(leaf_data);
    hasher.finalize().into()
}

fn node(left: &[u8], right: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// RFC 9162 §2.1.3.2: the root an inclusion proof implies, or `None` when it is malformed.
pub fn root_from_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: Hash,
    path: &[Vec<u8>],
) -> Option<Hash> {
    if leaf_index >= tree_size {
        return None;
    }
    let (mut fnode, mut snode) = (leaf_index, tree_size - 1);
    let mut r = leaf_hash;
    for p in path {
        if p.len() != 32 || snode == 0 {
            return None;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    (snode == 0).then_some(r)
}

/// RFC 9162 §2.1.4.2: whether `path` proves the tree of `second` (root `second_hash`)
/// extends the tree of `first` (root `first_hash`).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_hash: Hash,
    second_hash: Hash,
    path: &[Vec<u8>],
) -> bool {
    if first == second {
        return path.is_empty() && first_hash == second_hash;
    }
    if first == 0 || first > second || path.is_empty() || path.iter().any(|p| p.len() != 32) {
        return false;
    }
    let mut path: Vec<Vec<u8>> = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, first_hash.to_vec());
    }
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr: Hash = path[0].as_slice().try_into().unwrap_or([0; 32]);
    let mut sr = fr;
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == first_hash && sr == second_hash && snode == 0
}

/// What a checkpoint says, once its signature verified with `verifier_key` alone.
#[derive(Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub tree_size: u64,
    pub root: Hash,
}

pub fn open_checkpoint(verifier_key: &str, note: &str) -> Result<Checkpoint, String> {
    let verifier = signed_note::StandardVerifier::new(verifier_key)
        .map_err(|e| format!("verifier key: {e}"))?;
    let parsed =
        signed_note::Note::from_bytes(note.as_bytes()).map_err(|e| format!("note: {e}"))?;
    parsed
        .verify(&signed_note::VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| format!("signature: {e}"))?;
    let text = std::str::from_utf8(parsed.text()).map_err(|e| e.to_string())?;
    let lines: Vec<&str> = text.lines().collect();
    let [origin, size, root] = lines[..] else {
        return Err(format!("a checkpoint has three lines, not {}", lines.len()));
    };
    Ok(Checkpoint {
        origin: origin.to_owned(),
        tree_size: size.parse().map_err(|_| "size".to_owned())?,
        root: STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or("root")?,
    })
}
