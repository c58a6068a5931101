//! User accounts through GraphQL: creation, validation, listing, updates, disabling, visibility.

use serde_json::json;

use crate::support::{PASSWORD, TestApp};

const CREATE: &str = "mutation($input: CreateUserInput!) { createUser(input: $input) { user { id email displayName status } } }";

async fn creates_and_reads_a_user(t: TestApp) {
    let admin = t.admin_token().await;
    let created = t
        .gql(
            Some(&admin),
            CREATE,
            json!({ "input": { "email": " Ada@Example.COM ", "displayName": "Ada", "password": PASSWORD } }),
        )
        .await;
    let user = &created.data()["createUser"]["user"];
    assert_eq!(
        user["email"], "ada@example.com",
        "emails are trimmed and lower-cased"
    );
    assert_eq!(user["status"], "ACTIVE");

    let read = t
        .gql(
            Some(&admin),
            "query($id: ID!) { user(id: $id) { email displayName } }",
            json!({ "id": user["id"] }),
        )
        .await;
    assert_eq!(read.data()["user"]["displayName"], "Ada");
}

async fn rejects_bad_input_naming_the_field(t: TestApp) {
    let admin = t.admin_token().await;
    for (input, field) in [
        (
            json!({ "email": "not-an-email", "displayName": "X", "password": PASSWORD }),
            "email",
        ),
        (
            json!({ "email": "x@example.com", "displayName": "  ", "password": PASSWORD }),
            "displayName",
        ),
        (
            json!({ "email": "x@example.com", "displayName": "X", "password": "short" }),
            "password",
        ),
    ] {
        let response = t.gql(Some(&admin), CREATE, json!({ "input": input })).await;
        assert_eq!(response.code(), "BAD_USER_INPUT", "{input}");
        assert_eq!(response.field(), field);
        assert!(
            response.message().starts_with(field),
            "message names the field: {}",
            response.message()
        );
    }
    let listed = t.gql(Some(&admin), "{ users { totalCount } }", json!({})).await;
    assert_eq!(listed.data()["users"]["totalCount"], 1, "nothing half-written");

    let bad_id = t
        .gql(Some(&admin), "{ user(id: \"nope\") { id } }", json!({}))
        .await;
    assert_eq!(bad_id.code(), "BAD_USER_INPUT");
    assert_eq!(bad_id.field(), "id");
}

async fn duplicate_email_is_a_conflict(t: TestApp) {
    let admin = t.admin_token().await;
    t.create_user(&admin, "grace@example.com").await;
    let again = t
        .gql(
            Some(&admin),
            CREATE,
            json!({ "input": { "email": "GRACE@example.com", "displayName": "G" } }),
        )
        .await;
    assert_eq!(again.code(), "CONFLICT");
    assert_eq!(again.field(), "email");
}

async fn lists_users_with_keyset_pagination_and_filters(t: TestApp) {
    let admin = t.admin_token().await;
    for i in 0..5 {
        t.create_user(&admin, &format!("member{i}@example.com")).await;
    }
    let page = "query($first: Int, $after: String, $last: Int, $before: String, $filter: UserFilter) {
        users(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
          totalCount
          pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
          edges { cursor node { email } }
        }
      }";
    let first = t.gql(Some(&admin), page, json!({ "first": 2 })).await;
    let users = &first.data()["users"];
    assert_eq!(users["totalCount"], 6);
    assert_eq!(
        users["edges"][0]["node"]["email"], "admin@example.com",
        "oldest first"
    );
    assert_eq!(users["pageInfo"]["hasNextPage"], true);
    assert_eq!(users["pageInfo"]["hasPreviousPage"], false);

    // A user created between page loads does not shift the next page (keyset, not offset).
    t.create_user(&admin, "late@example.com").await;
    let second = t
        .gql(
            Some(&admin),
            page,
            json!({ "first": 2, "after": users["pageInfo"]["endCursor"] }),
        )
        .await;
    let emails: Vec<_> = second.data()["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emails, ["member1@example.com", "member2@example.com"]);
    assert_eq!(second.data()["users"]["pageInfo"]["hasPreviousPage"], true);

    let last = t.gql(Some(&admin), page, json!({ "last": 2 })).await;
    let edges = &last.data()["users"]["edges"];
    assert_eq!(edges[0]["node"]["email"], "member4@example.com");
    assert_eq!(
        edges[1]["node"]["email"], "late@example.com",
        "last page keeps ascending order"
    );
    assert_eq!(last.data()["users"]["pageInfo"]["hasPreviousPage"], true);

    let before = t
        .gql(
            Some(&admin),
            page,
            json!({ "last": 1, "before": edges[0]["cursor"] }),
        )
        .await;
    assert_eq!(
        before.data()["users"]["edges"][0]["node"]["email"],
        "member3@example.com"
    );

    let search = t
        .gql(Some(&admin), page, json!({ "filter": { "search": "MEMBER3" } }))
        .await;
    assert_eq!(search.data()["users"]["totalCount"], 1);
    let wildcard = t
        .gql(Some(&admin), page, json!({ "filter": { "search": "%" } }))
        .await;
    assert_eq!(
        wildcard.data()["users"]["totalCount"],
        0,
        "LIKE wildcards are matched literally"
    );

    let too_many = t.gql(Some(&admin), page, json!({ "first": 101 })).await;
    assert_eq!(too_many.code(), "BAD_USER_INPUT");
    assert_eq!(too_many.field(), "first");
    let bad_cursor = t.gql(Some(&admin), page, json!({ "after": "garbage" })).await;
    assert_eq!(bad_cursor.code(), "BAD_USER_INPUT");
    assert_eq!(bad_cursor.field(), "after");
}

async fn ordinary_users_see_and_change_only_themselves(t: TestApp) {
    let admin = t.admin_token().await;
    let other = t.create_user(&admin, "other@example.com").await;
    let (me, token) = t.user_with_token(&admin, "me@example.com").await;

    let own = t
        .gql(
            Some(&token),
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": me }),
        )
        .await;
    assert_eq!(own.data()["user"]["email"], "me@example.com");
    let theirs = t
        .gql(
            Some(&token),
            "query($id: ID!) { user(id: $id) { email } }",
            json!({ "id": other }),
        )
        .await;
    assert!(
        theirs.data()["user"].is_null(),
        "another user is invisible, not forbidden"
    );

    let list = t.gql(Some(&token), "{ users { totalCount } }", json!({})).await;
    assert_eq!(list.code(), "FORBIDDEN");
    let create = t
        .gql(
            Some(&token),
            CREATE,
            json!({ "input": { "email": "x@example.com", "displayName": "X" } }),
        )
        .await;
    assert_eq!(create.code(), "FORBIDDEN");
    let update = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { displayName } } }";
    let rename_other = t
        .gql(
            Some(&token),
            update,
            json!({ "input": { "id": other, "displayName": "Hacked" } }),
        )
        .await;
    assert_eq!(rename_other.code(), "FORBIDDEN");
    let rename_self = t
        .gql(
            Some(&token),
            update,
            json!({ "input": { "id": me, "displayName": "Me Myself" } }),
        )
        .await;
    assert_eq!(
        rename_self.data()["updateUser"]["user"]["displayName"],
        "Me Myself"
    );
    let disable = t
        .gql(
            Some(&token),
            "mutation($id: ID!) { disableUser(input: {id: $id}) { user { id } } }",
            json!({ "id": other }),
        )
        .await;
    assert_eq!(disable.code(), "FORBIDDEN");
    let anonymous = t.gql(None, "{ users { totalCount } }", json!({})).await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");
}

async fn changing_your_own_password_needs_the_current_one(t: TestApp) {
    let admin = t.admin_token().await;
    let (me, token) = t.user_with_token(&admin, "pw@example.com").await;
    let update = "mutation($input: UpdateUserInput!) { updateUser(input: $input) { user { id } } }";
    let missing = t
        .gql(
            Some(&token),
            update,
            json!({ "input": { "id": me, "password": "brand-new-pass" } }),
        )
        .await;
    assert_eq!(missing.field(), "currentPassword");
    let wrong = t
        .gql(
            Some(&token),
            update,
            json!({ "input": { "id": me, "password": "brand-new-pass", "currentPassword": "nope-nope" } }),
        )
        .await;
    assert_eq!(wrong.code(), "BAD_USER_INPUT");
    let ok = t
        .gql(
            Some(&token),
            update,
            json!({ "input": { "id": me, "password": "brand-new-pass", "currentPassword": PASSWORD } }),
        )
        .await;
    ok.data();
    assert_eq!(
        t.login("pw@example.com", "brand-new-pass").await["user"]["id"],
        me
    );
}

async fn disabled_users_are_locked_out(t: TestApp) {
    let admin = t.admin_token().await;
    let (id, token) = t.user_with_token(&admin, "leaver@example.com").await;
    let key = t
        .gql(
            Some(&token),
            "mutation { createApiKey(input: {name: \"ci\"}) { secret } }",
            json!({}),
        )
        .await;
    let key = key.data()["createApiKey"]["secret"].as_str().unwrap().to_owned();

    let disabled = t
        .gql(
            Some(&admin),
            "mutation($id: ID!) { disableUser(input: {id: $id}) { user { status } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(disabled.data()["disableUser"]["user"]["status"], "DISABLED");

    for credential in [&token, &key] {
        let viewer = t
            .gql(Some(credential), "{ viewer { user { id } } }", json!({}))
            .await;
        assert_eq!(viewer.code(), "UNAUTHENTICATED");
    }
    let login = t
        .gql(None, "mutation { login(input: {email: \"leaver@example.com\", password: \"user-password-1\"}) { accessToken } }", json!({}))
        .await;
    assert_eq!(login.code(), "UNAUTHENTICATED");

    let self_disable = t.gql(Some(&admin), "{ viewer { user { id } } }", json!({})).await;
    let admin_id = self_disable.data()["viewer"]["user"]["id"].clone();
    let refused = t
        .gql(
            Some(&admin),
            "mutation($id: ID!) { disableUser(input: {id: $id}) { user { id } } }",
            json!({ "id": admin_id }),
        )
        .await;
    assert_eq!(refused.code(), "CONFLICT");

    let enabled = t
        .gql(
            Some(&admin),
            "mutation($id: ID!) { enableUser(input: {id: $id}) { user { status } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(enabled.data()["enableUser"]["user"]["status"], "ACTIVE");
    t.login("leaver@example.com", PASSWORD).await;
}

crate::backend_tests!(
    creates_and_reads_a_user,
    rejects_bad_input_naming_the_field,
    duplicate_email_is_a_conflict,
    lists_users_with_keyset_pagination_and_filters,
    ordinary_users_see_and_change_only_themselves,
    changing_your_own_password_needs_the_current_one,
    disabled_users_are_locked_out,
);
