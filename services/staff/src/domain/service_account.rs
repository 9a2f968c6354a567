//! Service accounts' client ids and what an account may be given.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

/// Marks the client id format.
const CLIENT_ID_PREFIX: &str = "sa1";

/// The account a client id names: `sa1.<workspace, base64url>.<account id>`. Not a secret;
/// it locates the account by its primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId {
    pub workspace_id: String,
    pub service_account_id: Uuid,
}

impl ClientId {
    pub fn encode(&self) -> String {
        format!(
            "{CLIENT_ID_PREFIX}.{}.{}",
            URL_SAFE_NO_PAD.encode(self.workspace_id.as_bytes()),
            self.service_account_id.simple()
        )
    }

    pub fn parse(value: &str) -> Option<ClientId> {
        let mut parts = value.split('.');
        let (prefix, workspace, id) = (parts.next()?, parts.next()?, parts.next()?);
        if prefix != CLIENT_ID_PREFIX || parts.next().is_some() {
            return None;
        }
        Some(ClientId {
            workspace_id: String::from_utf8(URL_SAFE_NO_PAD.decode(workspace).ok()?).ok()?,
            service_account_id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// `active` or `revoked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceAccountStatus {
    Active,
    Revoked,
}

impl ServiceAccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceAccountStatus::Active => "active",
            ServiceAccountStatus::Revoked => "revoked",
        }
    }
}

/// The role service tokens carry: services hold exactly their listed permissions.
pub const SERVICE_ROLE: &str = "service";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_and_strangers_do_not_parse() {
        let id = ClientId {
            workspace_id: "acme".into(),
            service_account_id: Uuid::now_v7(),
        };
        assert_eq!(ClientId::parse(&id.encode()), Some(id.clone()));
        for stranger in [
            "",
            "sa1",
            "sa2.YWNtZQ.x",
            "sa1.YWNtZQ.not-a-uuid",
            "sa1.!!.0190a0b0c0d0e0f0a0b0c0d0e0f0a0b0",
        ] {
            assert_eq!(ClientId::parse(stranger), None, "{stranger}");
        }
        assert_eq!(ClientId::parse(&format!("{}.x", id.encode())), None);
    }
}
