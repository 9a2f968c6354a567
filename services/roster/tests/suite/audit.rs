//! The audit service among the others: it trusts the tokens the staff service signs, reads
//! their per-workspace roles, and refuses them once the staff service revokes them.

use roster_testkit::status::reason;
use std::time::{Duration, Instant};

use roster_proto::audit::v1 as audit;
use roster_proto::staff::v1 as staff;
use roster_testkit::with_bearer;
use tonic::Code;

use crate::helpers::Suite;

const WS: &str = "acme";
const PASSWORD: &str = "correct horse battery";

crate::on_both_databases!(a_staff_token_reads_the_audit_log_by_its_role_until_revoked);

/// An agent of `role` invited, accepted and signed in at the staff service: its id and the
/// access token the staff service signed.
async fn signed_in(suite: &mut Suite, email: &str, role: &str) -> (String, String) {
    let admin = suite.tokens.agent(&[WS], "admin", &[]);
    let invited = suite
        .staff
        .invite_agent(with_bearer(
            &admin,
            staff::InviteAgentRequest {
                workspace_id: WS.into(),
                email: email.into(),
                role: role.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    suite
        .staff
        .accept_invitation(staff::AcceptInvitationRequest {
            workspace_id: WS.into(),
            secret: invited.secret,
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let session = suite
        .staff
        .login(staff::LoginRequest {
            workspace_id: WS.into(),
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    (invited.agent.unwrap().agent_id, session.access_token)
}

async fn checkpoint(suite: &mut Suite, token: &str) -> Result<(), tonic::Status> {
    suite
        .audit
        .get_checkpoint(with_bearer(
            token,
            audit::GetCheckpointRequest {
                workspace_id: WS.into(),
            },
        ))
        .await
        .map(|_| ())
}

/// Calls until `done` holds, for at most `within`: revocations travel by the feed.
async fn until(
    suite: &mut Suite,
    token: &str,
    within: Duration,
    done: impl Fn(&Result<(), tonic::Status>) -> bool,
) {
    let started = Instant::now();
    loop {
        let result = checkpoint(suite, token).await;
        if done(&result) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "still {result:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn a_staff_token_reads_the_audit_log_by_its_role_until_revoked(mut suite: Suite) {
    let (admin_id, admin) = signed_in(&mut suite, "uhura@example.com", "admin").await;
    let (_, agent) = signed_in(&mut suite, "sulu@example.com", "agent").await;
    // A second admin, so the first may leave (the workspace keeps an active admin).
    let (_, colleague) = signed_in(&mut suite, "chekov@example.com", "admin").await;
    until(&mut suite, &admin, Duration::from_secs(10), Result::is_ok).await;
    // The agent role does not hold `audit_log.view`.
    let refused = checkpoint(&mut suite, &agent).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "PERMISSION_MISSING");

    let root = suite.tokens.agent(&[WS], "admin", &[]);
    suite
        .staff
        .deactivate_agent(with_bearer(
            &root,
            staff::DeactivateAgentRequest {
                workspace_id: WS.into(),
                agent_id: admin_id,
                reason: "left the company".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    until(&mut suite, &admin, Duration::from_secs(5), |result| {
        matches!(result, Err(status) if status.code() == Code::Unauthenticated && reason(status) == "TOKEN_REVOKED")
    })
    .await;
    checkpoint(&mut suite, &colleague)
        .await
        .expect("another admin's token is untouched");
}
