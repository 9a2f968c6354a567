use roster_proto::directory::v1 as pb;
use tonic::{Code, Status};

use crate::helpers::{TestApp, WS, assert_code, assert_invalid, mask, user};
use crate::on_both_databases;

on_both_databases!(
    create_get_update_and_delete_a_customer,
    delete_customer_with_live_users_fails,
    a_deleted_customer_is_kept_hidden_and_can_be_undeleted,
    users_cannot_be_created_in_or_moved_to_a_deleted_customer,
    a_user_of_a_deleted_customer_is_not_undeleted_into_it,
    imports_restore_a_deleted_customer_and_say_so,
    every_change_of_a_customer_honours_its_etag,
    customers_page_through_every_order,
    pages_neither_repeat_nor_skip_while_customers_are_added,
    a_page_token_is_bound_to_its_order_and_show_deleted,
);

impl TestApp {
    async fn get_customer(&self, customer_id: &str) -> Result<pb::Customer, Status> {
        self.client()
            .get_customer(self.admin(pb::GetCustomerRequest {
                workspace_id: WS.into(),
                customer_id: customer_id.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn delete_customer(&self, customer_id: &str, etag: &str) -> Result<pb::Customer, Status> {
        self.client()
            .delete_customer(self.admin(pb::DeleteCustomerRequest {
                workspace_id: WS.into(),
                customer_id: customer_id.into(),
                etag: etag.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn undelete_customer(
        &self,
        customer_id: &str,
        etag: &str,
    ) -> Result<pb::Customer, Status> {
        self.client()
            .undelete_customer(self.admin(pb::UndeleteCustomerRequest {
                workspace_id: WS.into(),
                customer_id: customer_id.into(),
                etag: etag.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn customer_page(
        &self,
        order_by: &str,
        show_deleted: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<pb::ListCustomersResponse, Status> {
        self.client()
            .list_customers(self.admin(pb::ListCustomersRequest {
                workspace_id: WS.into(),
                page_size,
                page_token: page_token.into(),
                filter: String::new(),
                order_by: order_by.into(),
                show_deleted,
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Every customer id in `order_by`, walking pages of `page_size`.
    async fn customer_ids(
        &self,
        order_by: &str,
        show_deleted: bool,
        page_size: i32,
    ) -> Vec<String> {
        let mut ids = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .customer_page(order_by, show_deleted, page_size, &token)
                .await
                .expect("list customers");
            assert!(page.customers.len() <= page_size as usize);
            ids.extend(page.customers.into_iter().map(|c| c.customer_id));
            if page.next_page_token.is_empty() {
                return ids;
            }
            token = page.next_page_token;
        }
    }

    async fn update_customer_name(
        &self,
        customer_id: &str,
        name: &str,
        etag: &str,
    ) -> Result<pb::Customer, Status> {
        self.client()
            .update_customer(self.admin(pb::UpdateCustomerRequest {
                workspace_id: WS.into(),
                customer: Some(pb::Customer {
                    customer_id: customer_id.into(),
                    name: name.into(),
                    etag: etag.into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
            }))
            .await
            .map(tonic::Response::into_inner)
    }

    async fn set_customer_status(
        &self,
        customer_id: &str,
        status: pb::CustomerStatus,
        etag: &str,
    ) -> Result<pb::Customer, Status> {
        self.client()
            .set_customer_status(self.admin(pb::SetCustomerStatusRequest {
                workspace_id: WS.into(),
                customer_id: customer_id.into(),
                status: status as i32,
                etag: etag.into(),
            }))
            .await
            .map(tonic::Response::into_inner)
    }
}

fn in_customer(external_id: &str, customer_id: &str) -> pb::User {
    pb::User {
        customer_id: customer_id.into(),
        ..user(external_id, &format!("{external_id}@example.com"))
    }
}

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
        .update_customer_name("uss001", "NCC-1701", &created.etag)
        .await
        .unwrap();
    assert_eq!(updated.name, "NCC-1701");
    assert_ne!(updated.etag, created.etag);

    let stale = app
        .set_customer_status(
            "uss001",
            pb::CustomerStatus::InactiveTemporarily,
            &created.etag,
        )
        .await;
    assert_code(stale, Code::Aborted);

    let deleted = app.delete_customer("uss001", "").await.unwrap();
    assert!(deleted.deleted_at.is_some());
    assert_eq!(deleted.name, "NCC-1701");
}

async fn delete_customer_with_live_users_fails(app: TestApp) {
    app.create_customer("px002", "Planet Express").await;
    let fry = app
        .try_create_user(in_customer("f001", "px002"))
        .await
        .unwrap();
    let refused = app.delete_customer("px002", "").await;
    let status = assert_code(refused, Code::FailedPrecondition);
    assert!(
        status.message().contains("1 end-user"),
        "{}",
        status.message()
    );

    app.delete_user(&fry.user_id).await.unwrap();
    app.delete_customer("px002", "").await.unwrap();
}

async fn a_deleted_customer_is_kept_hidden_and_can_be_undeleted(app: TestApp) {
    app.create_customer("uss001", "USS Enterprise").await;
    app.create_customer("uss002", "USS Defiant").await;

    let deleted = app.delete_customer("uss001", "").await.unwrap();
    assert!(deleted.deleted_at.is_some());

    // GetCustomer still answers, with deleted_at set; deleting again changes nothing.
    let got = app.get_customer("uss001").await.unwrap();
    assert_eq!(got.deleted_at, deleted.deleted_at);
    assert_eq!(got.etag, deleted.etag);
    let again = app.delete_customer("uss001", "").await.unwrap();
    assert_eq!(again.etag, deleted.etag);

    // Lists leave it out unless asked for it.
    assert_eq!(app.customer_ids("", false, 10).await, ["uss002"]);
    assert_eq!(app.customer_ids("", true, 10).await, ["uss001", "uss002"]);

    // It cannot be edited while deleted, and its id stays taken.
    let renamed = app.update_customer_name("uss001", "NCC-1701", "").await;
    let status = assert_code(renamed, Code::FailedPrecondition);
    assert!(status.message().contains("UndeleteCustomer"), "{status:?}");
    let inactive = app
        .set_customer_status("uss001", pb::CustomerStatus::Inactive, "")
        .await;
    assert_code(inactive, Code::FailedPrecondition);
    let recreated = app
        .client()
        .create_customer(app.admin(pb::CreateCustomerRequest {
            workspace_id: WS.into(),
            customer: Some(pb::Customer {
                customer_id: "uss001".into(),
                name: "Another".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await;
    let status = assert_code(recreated, Code::AlreadyExists);
    assert!(
        status.message().contains("deleted") && status.message().contains("UndeleteCustomer"),
        "{status:?}"
    );

    // Undelete brings it back as it was; a live customer cannot be undeleted.
    let restored = app.undelete_customer("uss001", "").await.unwrap();
    assert!(restored.deleted_at.is_none());
    assert_eq!(restored.name, "USS Enterprise");
    assert_eq!(app.customer_ids("", false, 10).await, ["uss001", "uss002"]);
    let twice = app.undelete_customer("uss001", "").await;
    assert_code(twice, Code::FailedPrecondition);
    assert_code(app.undelete_customer("nobody", "").await, Code::NotFound);

    let actions: Vec<String> = app
        .events_for("uss001")
        .await
        .into_iter()
        .map(|event| event.action)
        .collect();
    assert_eq!(
        actions,
        ["customer.created", "customer.deleted", "customer.undeleted"]
    );
}

async fn users_cannot_be_created_in_or_moved_to_a_deleted_customer(app: TestApp) {
    app.create_customer("px002", "Planet Express").await;
    app.create_customer("mom003", "MomCorp").await;
    app.delete_customer("px002", "").await.unwrap();

    let created = app.try_create_user(in_customer("f001", "px002")).await;
    let status = assert_code(created, Code::FailedPrecondition);
    assert!(status.message().contains("deleted"), "{status:?}");
    let missing = app.try_create_user(in_customer("f002", "nowhere")).await;
    let status = assert_code(missing, Code::FailedPrecondition);
    assert!(status.message().contains("does not exist"), "{status:?}");
    // Nothing of the refused creates was written, audit events included.
    assert!(app.list("").await.is_empty());
    assert_eq!(app.count_events("end_user.created").await, 0);

    let leela = app
        .try_create_user(in_customer("l001", "mom003"))
        .await
        .unwrap();
    let moved = app
        .client()
        .update_user(app.admin(pb::UpdateUserRequest {
            workspace_id: WS.into(),
            user: Some(pb::User {
                user_id: leela.user_id.clone(),
                customer_id: "px002".into(),
                ..Default::default()
            }),
            update_mask: mask(&["customer_id"]),
        }))
        .await;
    let status = assert_code(moved, Code::FailedPrecondition);
    assert!(status.message().contains("deleted"), "{status:?}");
    assert_eq!(
        app.get_user(&leela.user_id).await.unwrap().customer_id,
        "mom003"
    );

    // Once restored, the customer takes users again.
    app.undelete_customer("px002", "").await.unwrap();
    app.try_create_user(in_customer("f001", "px002"))
        .await
        .unwrap();
}

async fn a_user_of_a_deleted_customer_is_not_undeleted_into_it(app: TestApp) {
    app.create_customer("px002", "Planet Express").await;
    let fry = app
        .try_create_user(in_customer("f001", "px002"))
        .await
        .unwrap();
    app.delete_user(&fry.user_id).await.unwrap();
    app.delete_customer("px002", "").await.unwrap();

    let undeleted = app
        .client()
        .undelete_user(app.admin(pb::UndeleteUserRequest {
            workspace_id: WS.into(),
            user_id: fry.user_id.clone(),
            ..Default::default()
        }))
        .await;
    let status = assert_code(undeleted, Code::FailedPrecondition);
    assert!(status.message().contains("px002"), "{status:?}");
    assert_eq!(
        app.get_user(&fry.user_id).await.unwrap().status,
        pb::UserStatus::Deleted as i32
    );
}

async fn imports_restore_a_deleted_customer_and_say_so(app: TestApp) {
    for customer_id in ["px002", "mom003", "slurm4"] {
        app.create_customer(customer_id, "Fixture").await;
        app.delete_customer(customer_id, "").await.unwrap();
    }

    let upserted = app
        .upsert(None, in_customer("f001", "px002"), "")
        .await
        .unwrap();
    assert!(upserted.customer_undeleted);
    assert!(!upserted.customer_created);
    assert!(
        app.get_customer("px002")
            .await
            .unwrap()
            .deleted_at
            .is_none()
    );

    let csv = b"external_id,email,customer_id\nm001,m001@example.com,mom003\nm002,m002@example.com,mom003\n";
    let imported = app.import_csv(csv, 64, false, false).await.unwrap();
    assert_eq!(
        (
            imported.created,
            imported.customers_undeleted,
            imported.customers_created
        ),
        (2, 1, 0),
        "{imported:?}"
    );
    assert!(
        app.get_customer("mom003")
            .await
            .unwrap()
            .deleted_at
            .is_none()
    );

    // A deleted user of a deleted customer, imported again, brings both back.
    app.undelete_customer("slurm4", "").await.unwrap();
    let glurmo = app
        .try_create_user(in_customer("g001", "slurm4"))
        .await
        .unwrap();
    app.delete_user(&glurmo.user_id).await.unwrap();
    app.delete_customer("slurm4", "").await.unwrap();
    let again = app
        .upsert(None, user("g001", "g001@example.com"), "")
        .await
        .unwrap();
    assert_eq!(again.outcome, pb::UpsertOutcome::Undeleted as i32);
    assert!(again.customer_undeleted);
    assert!(
        app.get_customer("slurm4")
            .await
            .unwrap()
            .deleted_at
            .is_none()
    );
    // px002 and mom003 by imports, slurm4 by UndeleteCustomer and then by the upsert.
    assert_eq!(app.count_events("customer.undeleted").await, 4);
}

async fn every_change_of_a_customer_honours_its_etag(app: TestApp) {
    let created = app.create_customer("uss001", "USS Enterprise").await;
    let renamed = app
        .update_customer_name("uss001", "NCC-1701", &created.etag)
        .await
        .unwrap();
    let stale = created.etag.as_str();

    assert_code(
        app.update_customer_name("uss001", "Again", stale).await,
        Code::Aborted,
    );
    assert_code(
        app.set_customer_status("uss001", pb::CustomerStatus::Inactive, stale)
            .await,
        Code::Aborted,
    );
    assert_code(app.delete_customer("uss001", stale).await, Code::Aborted);
    let deleted = app.delete_customer("uss001", &renamed.etag).await.unwrap();
    assert_code(
        app.undelete_customer("uss001", &renamed.etag).await,
        Code::Aborted,
    );
    assert_invalid(app.undelete_customer("uss001", "not-an-etag").await, "etag");
    let restored = app
        .undelete_customer("uss001", &deleted.etag)
        .await
        .unwrap();
    assert_ne!(restored.etag, deleted.etag);
}

/// Seven customers whose names, creation and update times each sort differently from
/// their ids, with ties broken by id.
async fn arrange_customers(app: &TestApp) -> Vec<pb::Customer> {
    let names = [
        ("c1", "Nimbus"),
        ("c2", "Acme"),
        ("c3", "Zeta"),
        ("c4", "Acme"),
        ("c5", "Kappa"),
        ("c6", "Beta"),
        ("c7", "Nimbus"),
    ];
    // Created in this order, one second apart except c5 and c6, which tie.
    let created_order = ["c4", "c7", "c1", "c5", "c6", "c2", "c3"];
    for customer_id in created_order {
        let name = names.iter().find(|(id, _)| *id == customer_id).unwrap().1;
        app.create_customer(customer_id, name).await;
        if customer_id != "c5" {
            app.clock.advance_secs(1);
        }
    }
    // Updated in yet another order.
    for customer_id in ["c2", "c6", "c4"] {
        app.set_customer_status(customer_id, pb::CustomerStatus::Inactive, "")
            .await
            .unwrap();
        app.clock.advance_secs(1);
    }
    app.customer_page("", false, 100, "")
        .await
        .unwrap()
        .customers
}

fn sorted_ids(
    customers: &[pb::Customer],
    key: impl Fn(&pb::Customer) -> (String, i64),
    descending: bool,
) -> Vec<String> {
    let mut sorted: Vec<&pb::Customer> = customers.iter().collect();
    sorted.sort_by(|a, b| (key(a), &a.customer_id).cmp(&(key(b), &b.customer_id)));
    if descending {
        sorted.reverse();
    }
    sorted.into_iter().map(|c| c.customer_id.clone()).collect()
}

fn micros(timestamp: &Option<prost_types::Timestamp>) -> i64 {
    crate::helpers::us(timestamp.as_ref())
}

async fn customers_page_through_every_order(app: TestApp) {
    let customers = arrange_customers(&app).await;
    assert_eq!(customers.len(), 7);
    type Key = fn(&pb::Customer) -> (String, i64);
    let orders: [(&str, Key); 4] = [
        ("customer_id", |_| (String::new(), 0)),
        ("name", |c| (c.name.clone(), 0)),
        ("created_at", |c| (String::new(), micros(&c.created_at))),
        ("updated_at", |c| (String::new(), micros(&c.updated_at))),
    ];
    for (field, key) in orders {
        for (suffix, descending) in [("", false), (" asc", false), (" desc", true)] {
            let order_by = format!("{field}{suffix}");
            let expected = sorted_ids(&customers, key, descending);
            for page_size in [1, 2, 3, 7] {
                assert_eq!(
                    app.customer_ids(&order_by, false, page_size).await,
                    expected,
                    "order_by '{order_by}', pages of {page_size}"
                );
            }
        }
    }
    assert_eq!(
        app.customer_ids("", false, 2).await,
        ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    );
    assert_invalid(app.customer_page("email", false, 2, "").await, "order_by");
    assert_invalid(
        app.customer_page("name sideways", false, 2, "").await,
        "order_by",
    );
}

async fn pages_neither_repeat_nor_skip_while_customers_are_added(app: TestApp) {
    let customers = arrange_customers(&app).await;
    for (order_by, before, after) in [
        ("name", "Aardvark", "Zzz"),
        ("name desc", "Zzz", "Aardvark"),
        ("customer_id", "c0", "c9"),
    ] {
        let first = app.customer_page(order_by, false, 3, "").await.unwrap();
        // One customer sorts before the page just read, one after everything.
        let suffix = order_by.replace(' ', "-");
        app.create_customer(&format!("c0-{suffix}"), before).await;
        app.create_customer(&format!("c9-{suffix}"), after).await;
        let mut seen: Vec<String> = first.customers.into_iter().map(|c| c.customer_id).collect();
        let mut token = first.next_page_token;
        while !token.is_empty() {
            let page = app.customer_page(order_by, false, 3, &token).await.unwrap();
            seen.extend(page.customers.into_iter().map(|c| c.customer_id));
            token = page.next_page_token;
        }
        for customer in &customers {
            assert_eq!(
                seen.iter()
                    .filter(|id| **id == customer.customer_id)
                    .count(),
                1,
                "{order_by}: {} once in {seen:?}",
                customer.customer_id
            );
        }
        assert!(
            seen.contains(&format!("c9-{suffix}")),
            "{order_by}: a customer added after the cursor is listed: {seen:?}"
        );
        assert!(
            !seen.contains(&format!("c0-{suffix}")),
            "{order_by}: a customer added before the cursor is not: {seen:?}"
        );
    }
}

async fn a_page_token_is_bound_to_its_order_and_show_deleted(app: TestApp) {
    arrange_customers(&app).await;
    let first = app.customer_page("name", false, 2, "").await.unwrap();
    let token = first.next_page_token;
    assert!(!token.is_empty());
    // The same order spelled differently pages on.
    app.customer_page("NAME asc", false, 2, &token)
        .await
        .unwrap();
    for (order_by, show_deleted) in [("name desc", false), ("created_at", false), ("name", true)] {
        let status = assert_invalid(
            app.customer_page(order_by, show_deleted, 2, &token).await,
            "page_token",
        );
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    assert_invalid(
        app.customer_page("name", false, 2, "garbage").await,
        "page_token",
    );
}
