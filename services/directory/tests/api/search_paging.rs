//! ListUsers: the filter language, every sort order, and keyset paging that stays correct
//! while users are being added.

use std::collections::HashSet;

use roster_proto::directory::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, WS, assert_code, assert_invalid, us, user};
use crate::on_both_databases;

on_both_databases!(
    filters_find_partial_matches_customers_statuses_and_ranges,
    every_order_sorts_the_full_listing,
    paging_visits_every_user_once_while_users_are_added,
    page_tokens_belong_to_their_query,
    page_sizes_default_to_30_and_cap_at_1000,
);

const FOGBENDER: &[u8] = include_bytes!("../data/fogbender-users.csv");

fn emails(users: &[pb::User]) -> Vec<String> {
    let mut emails: Vec<String> = users.iter().map(|u| u.email.clone()).collect();
    emails.sort();
    emails
}

async fn filters_find_partial_matches_customers_statuses_and_ranges(app: TestApp) {
    app.import_csv(FOGBENDER, 4096, false, false).await.unwrap();
    let loner = app
        .create_user("x001", "loner@example.org", "Lone Wolf")
        .await;
    let drifter = app
        .create_user("x002", "drifter@example.org", "Drifter")
        .await;
    app.deactivate_user(&drifter.user_id).await.unwrap();

    assert_eq!(
        emails(&app.list("kirk").await),
        ["captain.kirk@example.com"]
    );
    assert_eq!(
        emails(&app.list("KIRK").await),
        ["captain.kirk@example.com"]
    );
    // Partial match on the name, also in the middle of a word.
    assert_eq!(
        emails(&app.list("onno").await),
        ["john.connor@example.com", "sarah.connor@example.com"]
    );
    assert_eq!(
        emails(&app.list("name:\"han so\"").await),
        ["han.solo@example.com"]
    );
    // Partial match on the external id.
    assert_eq!(
        emails(&app.list("external_id:k00").await),
        ["captain.kirk@example.com", "spock@example.com"]
    );
    assert_eq!(emails(&app.list("t002").await), ["john.connor@example.com"]);
    assert_eq!(
        emails(&app.list("email:leela").await),
        ["leela@example.com"]
    );
    // Customers: partial and none.
    assert_eq!(
        emails(&app.list("customer:uss").await),
        ["captain.kirk@example.com", "spock@example.com"]
    );
    assert_eq!(
        emails(&app.list("customer:none").await),
        ["drifter@example.org", "loner@example.org"]
    );
    // Statuses.
    assert_eq!(
        emails(&app.list("status:deactivated").await),
        ["drifter@example.org"]
    );
    assert_eq!(app.list("status:active").await.len(), 11);
    // AND of terms, with or without the word.
    assert_eq!(
        emails(&app.list("connor customer:cs0").await),
        ["john.connor@example.com", "sarah.connor@example.com"]
    );
    assert_eq!(
        emails(&app.list("connor AND john").await),
        ["john.connor@example.com"]
    );
    assert!(app.list("kirk customer:mil").await.is_empty());
    assert_eq!(
        emails(&app.list("customer:none status:active").await),
        ["loner@example.org"]
    );

    // Ranges on created_at, from the service's own timestamps.
    let loner_created = us(loner.created_at.as_ref());
    let at = |micros: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(
        emails(
            &app.list(&format!("created_at>={}", at(loner_created)))
                .await
        ),
        ["drifter@example.org", "loner@example.org"]
    );
    assert_eq!(
        emails(&app.list(&format!("created_at>{}", at(loner_created))).await),
        ["drifter@example.org"]
    );
    assert_eq!(
        app.list(&format!("created_at<{}", at(loner_created)))
            .await
            .len(),
        10
    );
    assert_eq!(
        emails(
            &app.list(&format!("created_at>={} lone", at(loner_created)))
                .await
        ),
        ["loner@example.org"]
    );
    // last_activity_at ranges.
    app.record_activity(&loner.user_id, None, 1).await.unwrap();
    assert_eq!(
        emails(
            &app.list(&format!("last_activity_at>={}", at(loner_created)))
                .await
        ),
        ["loner@example.org"]
    );
    assert_eq!(app.list("last_activity_at>=2000-01-01").await.len(), 1);
}

/// Twenty users with varied e-mails, statuses, counters and activity.
async fn seed(app: &TestApp, count: usize) -> Vec<pb::User> {
    let mut users = Vec::new();
    for i in 0..count {
        // Fixed-width local parts in a scrambled order, so e-mail order is not creation order.
        let n = (i * 7) % count;
        let mut new = user(&format!("ext{i:03}"), &format!("User{n:03}@example.com"));
        new.name = format!("Person {i}");
        if i % 5 == 1 {
            new.status = pb::UserStatus::Unconfirmed as i32;
        }
        let created = app.try_create_user(new).await.unwrap();
        if i % 3 == 0 {
            let occurred = us(created.created_at.as_ref()) + ((i * 37) % 11) as i64 * 1_000_000;
            app.record_activity(
                &created.user_id,
                Some(crate::helpers::ts(occurred)),
                i32::try_from(i % 4).unwrap(),
            )
            .await
            .unwrap();
        }
        if i % 7 == 2 {
            app.deactivate_user(&created.user_id).await.unwrap();
        }
        users.push(created);
    }
    users
}

fn status_name(status: i32) -> &'static str {
    match pb::UserStatus::try_from(status).unwrap() {
        pb::UserStatus::Active => "active",
        pb::UserStatus::Unconfirmed => "unconfirmed",
        pb::UserStatus::Deactivated => "deactivated",
        pb::UserStatus::Guest => "guest",
        pb::UserStatus::Deleted => "deleted",
        pb::UserStatus::Merged => "merged",
        pb::UserStatus::Erased => "erased",
        pb::UserStatus::Unspecified => "",
    }
}

/// The sort key a listing in `field` order must follow, with the id as tie-breaker.
fn sort_key(field: &str, user: &pb::User) -> (String, i64, String) {
    let id = user.user_id.clone();
    match field {
        "email" => (user.email.to_lowercase(), 0, id),
        "status" => (status_name(user.status).to_owned(), 0, id),
        "conversations" => (String::new(), user.conversation_count, id),
        "created_at" => (String::new(), us(user.created_at.as_ref()), id),
        "last_activity_at" => (String::new(), us(user.last_activity_at.as_ref()), id),
        other => panic!("{other}"),
    }
}

async fn every_order_sorts_the_full_listing(app: TestApp) {
    let seeded = seed(&app, 20).await;
    let all: HashSet<String> = seeded.iter().map(|u| u.user_id.clone()).collect();
    for field in [
        "email",
        "status",
        "conversations",
        "created_at",
        "last_activity_at",
    ] {
        for direction in ["", " asc", " desc"] {
            let order_by = format!("{field}{direction}");
            // Small pages, so that cursors must resume inside runs of equal values.
            let mut listed = Vec::new();
            let mut token = String::new();
            loop {
                let (page, next) = app.list_page("", &order_by, 3, &token, false).await;
                assert!(page.len() <= 3);
                listed.extend(page);
                if next.is_empty() {
                    break;
                }
                token = next;
            }
            let keys: Vec<_> = listed.iter().map(|u| sort_key(field, u)).collect();
            let mut expected = keys.clone();
            expected.sort();
            if direction == " desc" {
                expected.reverse();
            }
            assert_eq!(keys, expected, "order_by {order_by:?}");
            let ids: HashSet<String> = listed.iter().map(|u| u.user_id.clone()).collect();
            assert_eq!(ids.len(), listed.len(), "duplicates in {order_by:?}");
            assert_eq!(ids, all, "order_by {order_by:?} missed users");
        }
    }
    // The order is by value, not by accident of insertion: a few spot checks.
    let by_conversations = app.list_all("", "conversations desc", false).await;
    assert_eq!(by_conversations[0].conversation_count, 3);
    let by_email = app.list_all("", "email", false).await;
    assert_eq!(by_email[0].email, "User000@example.com");
    assert_eq!(by_email[19].email, "User019@example.com");
}

async fn paging_visits_every_user_once_while_users_are_added(app: TestApp) {
    let seeded = seed(&app, 20).await;
    let before: HashSet<String> = seeded.iter().map(|u| u.user_id.clone()).collect();
    for (round, order_by) in ["", "email", "created_at desc", "conversations"]
        .into_iter()
        .enumerate()
    {
        let mut seen = Vec::new();
        let mut token = String::new();
        let mut added = 0;
        loop {
            let (page, next) = app.list_page("", order_by, 3, &token, false).await;
            seen.extend(page.into_iter().map(|u| u.user_id));
            // Someone adds users between page fetches, sorting before and after the cursor.
            for email in [
                format!("aaa{round}{added:03}@example.com"),
                format!("zzz{round}{added:03}@example.com"),
            ] {
                app.try_create_user(user(&format!("new-{email}"), &email))
                    .await
                    .unwrap();
            }
            added += 1;
            if next.is_empty() {
                break;
            }
            token = next;
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{order_by:?}: a user was served twice"
        );
        let missed: Vec<&String> = before.iter().filter(|id| !unique.contains(id)).collect();
        assert!(missed.is_empty(), "{order_by:?}: skipped {missed:?}");
        assert!(added >= 7, "{order_by:?}: 20 users in pages of 3");
    }
}

async fn page_tokens_belong_to_their_query(app: TestApp) {
    seed(&app, 8).await;
    let (page, token) = app.list_page("example", "email", 3, "", false).await;
    assert_eq!(page.len(), 3);
    assert!(!token.is_empty());
    let list = |filter: &str, order_by: &str, show_deleted: bool| {
        let mut client = app.client();
        let request = app.admin(pb::ListUsersRequest {
            workspace_id: WS.into(),
            page_size: 3,
            page_token: token.clone(),
            filter: filter.into(),
            order_by: order_by.into(),
            show_deleted,
        });
        async move { client.list_users(request).await }
    };
    let other_filter = assert_invalid(list("user", "email", false).await, "page_token");
    assert!(
        other_filter.message().contains("filter"),
        "{}",
        other_filter.message()
    );
    assert_invalid(list("example", "created_at", false).await, "page_token");
    assert_invalid(list("example", "email", true).await, "page_token");
    // The same query resumes.
    let next = list("example", "email", false).await.unwrap().into_inner();
    assert_eq!(next.users.len(), 3);
    assert!(next.users.iter().all(|u| !page.contains(u)));
    // A token from another workspace's list is refused as well (it names another query).
    let other = app.token(&["other"], "admin", &[]);
    let elsewhere = app
        .client()
        .list_users(app.with_token(
            &other,
            pb::ListUsersRequest {
                workspace_id: "other".into(),
                page_size: 3,
                page_token: "eyJxIjoieCJ9".into(),
                ..Default::default()
            },
        ))
        .await;
    assert_code(elsewhere, Code::InvalidArgument);
}

async fn page_sizes_default_to_30_and_cap_at_1000(app: TestApp) {
    let mut csv = String::from("external_id,email\n");
    for i in 0..1005 {
        csv.push_str(&format!("bulk{i:05},bulk{i:05}@example.com\n"));
    }
    let result = app
        .import_csv(csv.as_bytes(), 8192, false, false)
        .await
        .unwrap();
    assert_eq!((result.created, result.failed), (1005, 0), "{result:?}");

    let (page, token) = app.list_page("", "", 0, "", false).await;
    assert_eq!(page.len(), 30);
    assert!(!token.is_empty());
    let (page, token) = app.list_page("", "", 5000, "", false).await;
    assert_eq!(page.len(), 1000);
    assert!(!token.is_empty());
    let (rest, last) = app.list_page("", "", 5000, &token, false).await;
    assert_eq!(rest.len(), 5);
    assert!(last.is_empty());
    let customers = app
        .client()
        .list_customers(app.admin(pb::ListCustomersRequest {
            workspace_id: WS.into(),
            page_size: 5000,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(customers.customers.is_empty());
}
