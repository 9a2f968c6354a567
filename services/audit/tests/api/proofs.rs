//! Checkpoints, inclusion and consistency proofs, checked as an outside verifier would:
//! with the log's public key and RFC 9162's algorithms (`verifier.rs`), nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use roster_proto::audit::v1 as pb;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::helpers::{ORIGIN, TestApp, WS, assert_refused, event, spawn_replica, violated_fields};
use crate::on_both_databases;
use crate::verifier::{self, leaf_hash, open_checkpoint, root_from_inclusion, verify_consistency};

on_both_databases!(
    a_checkpoint_verifies_with_the_public_key_alone,
    every_event_is_proven_in_a_signed_checkpoint,
    a_saved_checkpoint_is_extended_by_every_later_one,
    proofs_refuse_sizes_and_leaves_the_log_lacks,
    proofs_asked_at_once_each_get_their_own_answer,
    a_proof_asked_while_its_event_is_appended_waits_for_it_or_proves_it,
    the_key_survives_a_restart_and_needs_its_kek,
);

async fn a_checkpoint_verifies_with_the_public_key_alone(app: TestApp) {
    let key = app.log_key(WS).await;
    assert_eq!(key.name, format!("{ORIGIN}/{WS}"));
    assert!(
        key.verifier_key
            .starts_with(&format!("{ORIGIN}/{WS}+{:08x}+", key.key_id))
    );

    // Before the first event: the empty tree, signed.
    let empty = app.checkpoint().await;
    let opened = open_checkpoint(&key.verifier_key, &empty.signed_note).unwrap();
    assert_eq!(opened.tree_size, 0);
    assert_eq!(opened.root, <[u8; 32]>::from(Sha256::digest(b"")));

    app.append(vec![event("end_user.created"), event("end_user.updated")])
        .await;
    let checkpoint = app.checkpoint().await;
    let opened = open_checkpoint(&key.verifier_key, &checkpoint.signed_note).unwrap();
    assert_eq!(opened.origin, checkpoint.origin);
    assert_eq!(opened.tree_size, 2);
    assert_eq!(opened.root.to_vec(), checkpoint.root_hash);

    // An edited note, another workspace's key, another log's checkpoint: refused.
    let edited = checkpoint.signed_note.replacen("\n2\n", "\n3\n", 1);
    assert!(open_checkpoint(&key.verifier_key, &edited).is_err());
    let other = app.log_key("globex").await;
    assert_ne!(other.key_id, key.key_id, "the name is part of the key id");
    assert_eq!(
        other.public_key, key.public_key,
        "one key signs every workspace's log"
    );
    assert!(open_checkpoint(&other.verifier_key, &checkpoint.signed_note).is_err());
    // GetLogKey needs no token; it is what verifiers pin.
    assert_refused(
        app.client()
            .get_log_key(pb::GetLogKeyRequest {
                workspace_id: "a b".into(),
            })
            .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
}

async fn inclusion(
    app: &TestApp,
    request: pb::GetInclusionProofRequest,
) -> Result<pb::InclusionProof, tonic::Status> {
    app.client()
        .get_inclusion_proof(app.admin(pb::GetInclusionProofRequest {
            workspace_id: WS.into(),
            ..request
        }))
        .await
        .map(tonic::Response::into_inner)
}

fn by_event(event_id: &str, tree_size: i64) -> pb::GetInclusionProofRequest {
    pb::GetInclusionProofRequest {
        leaf: Some(pb::get_inclusion_proof_request::Leaf::EventId(
            event_id.into(),
        )),
        tree_size,
        ..Default::default()
    }
}

async fn every_event_is_proven_in_a_signed_checkpoint(app: TestApp) {
    let key = app.log_key(WS).await;
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    for batch in [3usize, 4, 1, 5] {
        let events: Vec<_> = (0..batch).map(|_| event("end_user.updated")).collect();
        ids.extend(events.iter().map(|e| e.event_id.clone()));
        app.append(events).await;
        sizes
            .push(open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap());
    }
    let latest = sizes.last().unwrap();
    assert_eq!(latest.tree_size, 13);
    for (leaf, event_id) in (0u64..).zip(&ids) {
        let proof = inclusion(&app, by_event(event_id, 0)).await.unwrap();
        assert_eq!(proof.leaf_index as u64, leaf);
        assert_eq!(proof.tree_size, 13);
        assert_eq!(proof.event_id, *event_id);
        // The leaf is the event's: it carries its id, and hashes to what the tree holds.
        let id_bytes = uuid::Uuid::parse_str(event_id).unwrap();
        assert!(
            proof
                .leaf_data
                .windows(16)
                .any(|w| w == id_bytes.as_bytes())
        );
        assert!(
            !proof
                .leaf_data
                .windows(16)
                .any(|w| w == b"kirk@example.com")
        );
        let hashed = leaf_hash(&proof.leaf_data);
        assert_eq!(hashed.to_vec(), proof.leaf_hash);
        let root = root_from_inclusion(leaf, 13, hashed, &proof.hashes).unwrap();
        assert_eq!(root, latest.root, "leaf {leaf}");
        // In every earlier checkpoint that holds it, too (by leaf index).
        for checkpoint in sizes.iter().filter(|c| c.tree_size > leaf) {
            let proof = inclusion(
                &app,
                pb::GetInclusionProofRequest {
                    leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(
                        leaf as i64,
                    )),
                    tree_size: checkpoint.tree_size as i64,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
            let root = root_from_inclusion(leaf, checkpoint.tree_size, hashed, &proof.hashes);
            assert_eq!(
                root,
                Some(checkpoint.root),
                "leaf {leaf} in {}",
                checkpoint.tree_size
            );
        }
    }
    // A proof bent anywhere no longer leads to the signed root.
    let proof = inclusion(&app, by_event(&ids[5], 0)).await.unwrap();
    let hashed = leaf_hash(&proof.leaf_data);
    for at in 0..proof.hashes.len() {
        let mut bent = proof.hashes.clone();
        bent[at][0] ^= 1;
        assert_ne!(root_from_inclusion(5, 13, hashed, &bent), Some(latest.root));
    }
    assert_ne!(
        root_from_inclusion(6, 13, hashed, &proof.hashes),
        Some(latest.root)
    );
    assert_ne!(
        root_from_inclusion(5, 13, leaf_hash(b"another event"), &proof.hashes),
        Some(latest.root)
    );
}

async fn a_saved_checkpoint_is_extended_by_every_later_one(app: TestApp) {
    let key = app.log_key(WS).await;
    app.append_each(3).await;
    // A consumer keeps yesterday's checkpoint.
    let saved = open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap();
    app.append((0..6).map(|_| event("end_user.updated")).collect())
        .await;
    app.append_each(2).await;
    let today = open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap();
    assert_eq!((saved.tree_size, today.tree_size), (3, 11));
    let proof = app
        .client()
        .get_consistency_proof(app.admin(pb::GetConsistencyProofRequest {
            workspace_id: WS.into(),
            old_size: 3,
            new_size: 11,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(verify_consistency(
        3,
        11,
        saved.root,
        today.root,
        &proof.hashes
    ));
    assert_eq!(proof.old_root_hash, saved.root.to_vec());
    // A rewritten past (another old root) is not consistent with today.
    let forged: [u8; 32] = Sha256::digest(b"forged").into();
    assert!(!verify_consistency(
        3,
        11,
        forged,
        today.root,
        &proof.hashes
    ));
    for at in 0..proof.hashes.len() {
        let mut bent = proof.hashes.clone();
        bent[at][0] ^= 1;
        assert!(!verify_consistency(3, 11, saved.root, today.root, &bent));
    }
    // Every pair of sizes, the default new size being the current one.
    for old in 1..=11i64 {
        let proof = app
            .client()
            .get_consistency_proof(app.admin(pb::GetConsistencyProofRequest {
                workspace_id: WS.into(),
                old_size: old,
                new_size: 0,
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(proof.new_size, 11);
        let old_root: [u8; 32] = proof.old_root_hash.clone().try_into().unwrap();
        assert!(
            verify_consistency(old as u64, 11, old_root, today.root, &proof.hashes),
            "{old} → 11"
        );
    }
    let same = verifier::verify_consistency(11, 11, today.root, today.root, &[]);
    assert!(same);
}

async fn proofs_refuse_sizes_and_leaves_the_log_lacks(app: TestApp) {
    let ids = app.append_each(3).await;
    assert_refused(
        inclusion(&app, by_event(&ids[0], 4)).await,
        Code::OutOfRange,
        "TREE_SIZE_AHEAD",
    );
    let status = assert_refused(
        inclusion(&app, by_event(&ids[2], 2)).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["tree_size"]);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_refused(
        inclusion(&app, by_event(&unknown, 0)).await,
        Code::NotFound,
        "EVENT_NOT_FOUND",
    );
    assert_refused(
        inclusion(
            &app,
            pb::GetInclusionProofRequest {
                leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(3)),
                ..Default::default()
            },
        )
        .await,
        Code::NotFound,
        "EVENT_NOT_FOUND",
    );
    let status = assert_refused(
        inclusion(
            &app,
            pb::GetInclusionProofRequest {
                leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(-1)),
                tree_size: -2,
                ..Default::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["leaf_index", "tree_size"]);
    let status = assert_refused(
        inclusion(&app, pb::GetInclusionProofRequest::default()).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["leaf"]);

    let consistency = |old_size: i64, new_size: i64| {
        let app = app.clone();
        async move {
            app.client()
                .get_consistency_proof(app.admin(pb::GetConsistencyProofRequest {
                    workspace_id: WS.into(),
                    old_size,
                    new_size,
                }))
                .await
        }
    };
    let status = assert_refused(
        consistency(0, 3).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["old_size"]);
    let status = assert_refused(
        consistency(3, 2).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["old_size"]);
    assert_refused(consistency(2, 4).await, Code::OutOfRange, "TREE_SIZE_AHEAD");
    assert_refused(consistency(4, 0).await, Code::OutOfRange, "TREE_SIZE_AHEAD");
    let status = assert_refused(
        consistency(-1, -1).await,
        Code::InvalidArgument,
        "INVALID_ARGUMENT",
    );
    assert_eq!(violated_fields(&status), ["old_size", "new_size"]);
    let equal = consistency(3, 3).await.unwrap().into_inner();
    assert!(equal.hashes.is_empty());
}

/// What one of many concurrent GetInclusionProof calls should answer.
enum Expected {
    /// A proof of this leaf in the tree of this size.
    Proof {
        leaf: u64,
        tree_size: u64,
    },
    Refused(Code, &'static str),
}

/// Proofs asked of one log at once are proven together (a round reads their events and
/// hashes in one go); each still gets its own proof or its own refusal, whatever else the
/// round held: other sizes, other leaves, missing events.
async fn proofs_asked_at_once_each_get_their_own_answer(app: TestApp) {
    let key = app.log_key(WS).await;
    let mut ids = Vec::new();
    let mut roots = std::collections::HashMap::new();
    for batch in [5usize, 17, 1, 9, 32] {
        let events: Vec<_> = (0..batch).map(|_| event("end_user.updated")).collect();
        ids.extend(events.iter().map(|e| e.event_id.clone()));
        app.append(events).await;
        let opened =
            open_checkpoint(&key.verifier_key, &app.checkpoint().await.signed_note).unwrap();
        roots.insert(opened.tree_size, opened.root);
    }
    let size = ids.len() as u64;
    let sizes: Vec<u64> = roots.keys().copied().collect();
    let mut asks = Vec::new();
    for (leaf, event_id) in (0u64..).zip(&ids) {
        asks.push((
            by_event(event_id, 0),
            Expected::Proof {
                leaf,
                tree_size: size,
            },
        ));
        let tree_size = sizes[leaf as usize % sizes.len()];
        let request = pb::GetInclusionProofRequest {
            leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafIndex(
                leaf as i64,
            )),
            tree_size: tree_size as i64,
            ..Default::default()
        };
        asks.push(if leaf < tree_size {
            (request, Expected::Proof { leaf, tree_size })
        } else {
            (
                request,
                Expected::Refused(Code::InvalidArgument, "INVALID_ARGUMENT"),
            )
        });
    }
    for _ in 0..4 {
        let unknown = uuid::Uuid::now_v7().to_string();
        asks.push((
            by_event(&unknown, 0),
            Expected::Refused(Code::NotFound, "EVENT_NOT_FOUND"),
        ));
        asks.push((
            by_event(&ids[3], size as i64 + 1),
            Expected::Refused(Code::OutOfRange, "TREE_SIZE_AHEAD"),
        ));
    }
    let calls: Vec<_> = asks
        .iter()
        .map(|(request, _)| {
            let (app, request) = (app.clone(), request.clone());
            tokio::spawn(async move { inclusion(&app, request).await })
        })
        .collect();
    for ((request, expected), call) in asks.iter().zip(calls) {
        let answer = call.await.unwrap();
        match expected {
            Expected::Proof { leaf, tree_size } => {
                let proof = answer.unwrap_or_else(|status| panic!("{request:?}: {status:?}"));
                assert_eq!(
                    (proof.leaf_index as u64, proof.tree_size as u64),
                    (*leaf, *tree_size)
                );
                let hashed = leaf_hash(&proof.leaf_data);
                assert_eq!(
                    root_from_inclusion(*leaf, *tree_size, hashed, &proof.hashes),
                    Some(roots[tree_size]),
                    "leaf {leaf} in {tree_size}"
                );
            }
            Expected::Refused(code, reason) => {
                assert_refused(answer, *code, reason);
            }
        }
    }
}

/// Provers ask about events still being appended: each answer is NOT_FOUND (not recorded
/// yet) or a proof in a tree that holds the event, never a refusal for a tree too small
/// (a round reads the log's head after the events, so the head holds every event found).
async fn a_proof_asked_while_its_event_is_appended_waits_for_it_or_proves_it(app: TestApp) {
    let batches: Vec<Vec<pb::AuditEvent>> = (0..40)
        .map(|_| (0..5).map(|_| event("end_user.updated")).collect())
        .collect();
    let ids: Arc<Vec<String>> = Arc::new(
        batches
            .iter()
            .flatten()
            .map(|event| event.event_id.clone())
            .collect(),
    );
    // The writer appends a batch once a prover was told its first event is missing, so
    // every batch lands while provers are asking about it.
    let misses = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (app, misses) = (app.clone(), misses.clone());
        tokio::spawn(async move {
            for batch in batches {
                let seen = misses.load(Ordering::SeqCst);
                let waited = Instant::now();
                while misses.load(Ordering::SeqCst) == seen
                    && waited.elapsed() < Duration::from_secs(2)
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                app.append(batch).await;
            }
        })
    };
    let mut provers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, ids, misses) = (app.clone(), ids.clone(), misses.clone());
        provers.spawn(async move {
            let mut not_yet = 0;
            for (leaf, id) in (0u64..).zip(ids.iter()) {
                loop {
                    match inclusion(&app, by_event(id, 0)).await {
                        Ok(proof) => {
                            assert_eq!(proof.leaf_index as u64, leaf);
                            let hashed = leaf_hash(&proof.leaf_data);
                            assert_eq!(
                                root_from_inclusion(
                                    leaf,
                                    proof.tree_size as u64,
                                    hashed,
                                    &proof.hashes
                                )
                                .map(|root| root.to_vec()),
                                Some(proof.root_hash.clone()),
                                "leaf {leaf}"
                            );
                            break;
                        }
                        Err(status) if status.code() == Code::NotFound => {
                            not_yet += 1;
                            misses.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                        }
                        Err(status) => panic!("leaf {leaf}: {status:?}"),
                    }
                }
            }
            not_yet
        });
    }
    // A prover's failure ends the test at once, not after the writer gave up on it.
    let mut asked_early = 0;
    while let Some(prover) = provers.join_next().await {
        asked_early += prover.unwrap();
    }
    writer.await.unwrap();
    assert!(
        asked_early >= 40,
        "the provers ran ahead of only {asked_early} of 40 batches"
    );
}

async fn the_key_survives_a_restart_and_needs_its_kek(app: TestApp) {
    app.append_each(2).await;
    let key = app.log_key(WS).await;
    let before = app.checkpoint().await;
    // A second replica (or the service restarted) on the same database and KEK.
    let (replica, served) =
        spawn_replica(&app.database_url, app.tokens.clone(), app.kek.clone()).await;
    assert_eq!(replica.log_key(WS).await, key);
    replica.append_each(1).await;
    let after = replica.checkpoint().await;
    assert_eq!(
        open_checkpoint(&key.verifier_key, &after.signed_note)
            .unwrap()
            .tree_size,
        3
    );
    assert!(open_checkpoint(&key.verifier_key, &before.signed_note).is_ok());
    served.stop().await;

    // Another KEK cannot open the key: the service refuses to start rather than sign
    // with a key verifiers do not know.
    let stranger = roster_kek::Keyring::generate("other-kek").unwrap();
    let db = roster_audit::prepare_database(&roster_db::DbSettings::new(&app.database_url))
        .await
        .unwrap();
    let refused = roster_audit::Application::build(
        roster_runtime::ServerSettings::for_tests(),
        db,
        app.tokens.verifier(),
        Arc::new(roster_audit::domain::SystemClock),
        roster_audit::startup::Signing {
            kek: stranger,
            log: roster_audit::settings::LogSettings {
                origin: ORIGIN.into(),
            },
        },
    )
    .await;
    let error = refused.err().expect("the service refuses to start");
    assert!(
        format!("{error:#}").contains("ROSTER_AUDIT_KEK_FILE"),
        "{error:#}"
    );
}
