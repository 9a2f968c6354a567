use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code};
use crate::on_both_databases;

on_both_databases!(
    create_get_update_and_delete_a_customer,
    delete_customer_with_live_users_fails
);

async fn create_get_update_and_delete_a_customer(app: TestApp) {
    let created = app.create_customer("uss001", "USS Enterprise").await;
    assert_eq!(created.status, pb::CustomerStatus::Active as i32);

    let duplicate = app
        .client()
        .create_customer(app.admin(pb::CreateCustomerRequest {
            request_id: String::new(),
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss001".into(),
                name: "Again".into(),
                ..Default::default()
            }),
        }))
        .await;
    assert_code(duplicate, Code::AlreadyExists);

    let updated = app
        .client()
        .update_customer(app.admin(pb::UpdateCustomerRequest {
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss001".into(),
                name: "NCC-1701".into(),
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["name".into()],
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, "NCC-1701");
    assert_ne!(updated.etag, created.etag);

    let stale = app
        .client()
        .set_customer_status(app.admin(pb::SetCustomerStatusRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
            status: pb::CustomerStatus::InactiveTemporarily as i32,
            etag: created.etag.clone(),
        }))
        .await;
    assert_code(stale, Code::Aborted);

    app.client()
        .delete_customer(app.admin(pb::DeleteCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
            etag: String::new(),
        }))
        .await
        .unwrap();
    let gone = app
        .client()
        .get_customer(app.admin(pb::GetCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "uss001".into(),
        }))
        .await;
    assert_code(gone, Code::NotFound);
}

async fn delete_customer_with_live_users_fails(app: TestApp) {
    app.create_customer("px002", "Planet Express").await;
    let user = pb::User {
        external_id: "f001".into(),
        email: "fry@example.com".into(),
        customer_id: "px002".into(),
        ..Default::default()
    };
    let fry = app
        .client()
        .create_user(app.admin(pb::CreateUserRequest {
            workspace_id: WS.into(),
            user: Some(user),
            request_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    let refused = app
        .client()
        .delete_customer(app.admin(pb::DeleteCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "px002".into(),
            etag: String::new(),
        }))
        .await;
    let status = assert_code(refused, Code::FailedPrecondition);
    assert!(
        status.message().contains("1 end-user"),
        "{}",
        status.message()
    );

    app.client()
        .delete_user(app.admin(pb::DeleteUserRequest {
            workspace_id: WS.into(),
            user_id: fry.user_id,
            etag: String::new(),
        }))
        .await
        .unwrap();
    app.client()
        .delete_customer(app.admin(pb::DeleteCustomerRequest {
            workspace_id: WS.into(),
            customer_id: "px002".into(),
            etag: String::new(),
        }))
        .await
        .unwrap();
}
