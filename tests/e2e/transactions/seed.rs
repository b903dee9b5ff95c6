//! The seed's examples, byte for byte, and what the API refuses.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::api::transactions::{SEED_TOKEN, spawn_with_tenants};

const ALAN_GRACE: &str = r#"[
       {
         "name": "Alan Turing",
         "identification": "1234",
         "contractorControlId": "1234",
         "genre": "M",
         "active": false,
         "birthDate": "1912-06-23"
       },
       {
         "name": "Grace Hopper",
         "identification": "5678",
         "contractorControlId": "5678",
         "genre": "M",
         "active": true,
         "birthDate": "1906-12-09"
       }
     ]"#;

#[tokio::test]
async fn the_seeds_examples_byte_for_byte() {
    let app = spawn_with_tenants().await;
    let tx = app.transactions(SEED_TOKEN);
    let (s, created) = tx.call(Method::POST, "/v1/transactions/", None).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_str(&created).unwrap();
    let id = v["data"]["_id"].as_str().unwrap();
    let date = v["data"]["date"].as_str().unwrap();
    assert!(
        id.starts_with('8') && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
    let shape = format!(
        r#"{{"data":{{"_id":"{id}","apiIntegrationScope":[],"status":1,"descStatus":"Created","date":"{date}"}},"statusLog":[{{"type":3}}]}}"#
    );
    assert_eq!(created, shape);
    assert_eq!(date.len(), "2019-01-31T16:56:03.824Z".len());

    let (s, b) = tx
        .call(
            Method::POST,
            &format!("/v1/collaborators/?transaction_id={id}"),
            Some(ALAN_GRACE),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        r#"[{"__v":0,"name":"Alan Turing","identification":"1234","contractorControlId":"1234","genre":"M","active":false,"birthDate":"1912-06-23","stackId":"ID","contractorId":"8"},{"__v":0,"name":"Grace Hopper","identification":"5678","contractorControlId":"5678","genre":"M","active":true,"birthDate":"1906-12-09","stackId":"ID","contractorId":"8"}]"#
            .replace("ID", id)
    );

    let update = r#"[
       {
         "name": "Alan Turing",
         "identification": "1234",
         "contractorControlId": "1234",
         "genre": "M",
         "active": true,
         "birthDate": "1912-06-23"
       }
     ]"#;
    let (s, b) = tx
        .call(
            Method::PUT,
            &format!("/v1/collaborators/?transaction_id={id}"),
            Some(update),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        r#"[{"__v":0,"name":"Alan Turing","identification":"1234","contractorControlId":"1234","genre":"M","active":true,"birthDate":"1912-06-23","stackId":"ID","contractorId":"8"}]"#
            .replace("ID", id)
    );

    let missing_name = r#"[
       {
         "identification": "1234",
         "contractorControlId": "1234",
         "genre": "M",
         "active": true,
         "birthDate": "1912-06-23"
       }
     ]"#;
    let (s, b) = tx
        .call(
            Method::POST,
            &format!("/v1/collaborators/?transaction_id={id}"),
            Some(missing_name),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        r#"{"params":{"key":"name"},"code":302,"dataPath":"","schemaPath":"/required/0","subErrors":null,"status":400,"name":"Error","message":"The \"collaborators\" body parameter is invalid ([{\"identification\":\"1234\",\"contractorControlId\":\"1234\",\"genre\":\"M\",\"active\":true,\"birthDate\":\"1912-06-23\"}]) \nUnable to parse array item at index 0 ({\"identification\":\"1234\",\"contractorControlId\":\"1234\",\"genre\":\"M\",\"active\":true,\"birthDate\":\"1912-06-23\"}). \nJSON Schema validation error. \nData path: \"undefined[0].\" \nSchema path: \"/required/0\" \nMissing required property: name"}"#
    );
    // Nothing of the refused batch was stored.
    assert_eq!(tx.get(id).await["data"]["counts"]["received"], 3);

    // The status, as the seed shows it, plus counts and errors.
    let (_, status) = tx
        .call(Method::GET, &format!("/v1/transactions/{id}"), None)
        .await;
    let prefix = format!(
        r#"{{"data":{{"_id":"{id}","apiIntegrationScope":[],"status":1,"descStatus":"Created","date":"{date}""#
    );
    assert!(status.starts_with(&prefix), "{status}");
    assert!(status.ends_with(r#""statusLog":[{"type":3}]}"#), "{status}");

    let (s, b) = tx
        .commit(id, "?startDate=2000-01-01&endDate=2000-01-20")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        r#"{"data":{"n":1,"nModified":1,"ok":1},"statusLog":[{"type":3}]}"#
    );
    // A second commit changes nothing.
    let (s, b) = tx.commit(id, "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        r#"{"data":{"n":1,"nModified":0,"ok":1},"statusLog":[{"type":3}]}"#
    );
    // Writing to a committed transaction is 409.
    let (s, b) = tx
        .call(
            Method::POST,
            &format!("/v1/collaborators/?transaction_id={id}"),
            Some(ALAN_GRACE),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");

    app.drain().await;
    let done = tx.get(id).await;
    assert_eq!(done["data"]["status"], 7, "{done}");
    assert_eq!(done["data"]["descStatus"], "Done");
    assert_eq!(
        done["data"]["counts"],
        json!({"received": 3, "valid": 2, "invalid": 0, "skipped": 0, "superseded": 1,
               "consolidated": 2, "resources": {"collaborators": 3}})
    );
    assert_eq!(done["data"]["startDate"], "2000-01-01");
    let (s, alan) = tx.record("collaborators", "1234").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        alan,
        r#"{"data":{"__v":0,"name":"Alan Turing","identification":"1234","contractorControlId":"1234","genre":"M","active":true,"birthDate":"1912-06-23","stackId":"ID","contractorId":"8"}}"#
            .replace("ID", id)
    );
}

#[tokio::test]
async fn tokens_tenants_and_refusals() {
    let app = spawn_with_tenants().await;
    let tx = app.transactions(SEED_TOKEN);
    let id = tx.create().await;

    for token in ["", "nope"] {
        let (s, b) = app
            .transactions(token)
            .call(Method::GET, &format!("/v1/transactions/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["status"], 401);
        assert_eq!(v["name"], "Error");
    }
    // Another tenant does not see it.
    let (s, _) = app
        .transactions("other")
        .call(Method::GET, &format!("/v1/transactions/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = tx.call(Method::GET, "/v1/transactions/82019", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        b,
        r#"{"status":404,"name":"Error","message":"Transaction not found"}"#
    );
    let (s, _) = tx
        .send(Method::POST, "collaborators", "123", &json!([]))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = tx
        .call(Method::POST, "/v1/collaborators/", Some("[]"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        b,
        r#"{"status":400,"name":"Error","message":"Missing required query parameter \"transaction_id\""}"#
    );
    let (s, _) = tx.send(Method::POST, "widgets", &id, &json!([])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // 501 items: tv4's array error, nothing stored.
    let item = json!({"indicatorId": "i", "name": "n"});
    let (s, b) = tx
        .send(
            Method::POST,
            "indicators",
            &id,
            &Value::Array(vec![item.clone(); 501]),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["code"], 401);
    assert_eq!(v["schemaPath"], "/maxItems");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("Array is too long (501), maximum 500")
    );
    let (s, _) = tx
        .send(
            Method::POST,
            "indicators",
            &id,
            &Value::Array(vec![item.clone(); 500]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tx.get(&id).await["data"]["counts"]["received"], 500);

    // Idempotency-Key: a re-sent batch is a no-op that answers the same.
    let batch = json!([{"indicatorId": "k", "name": "n"}]).to_string();
    let path = format!("/v1/indicators/?transaction_id={id}");
    let first = tx
        .raw(
            Method::POST,
            &path,
            Some(&batch),
            &[("Idempotency-Key", "b-1")],
        )
        .await;
    let again = tx
        .raw(
            Method::POST,
            &path,
            Some(&batch),
            &[("Idempotency-Key", "b-1")],
        )
        .await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(first, again);
    assert_eq!(tx.get(&id).await["data"]["counts"]["received"], 501);
    let other = json!([{"indicatorId": "z", "name": "n"}]).to_string();
    let (s, _, _) = tx
        .raw(
            Method::POST,
            &path,
            Some(&other),
            &[("Idempotency-Key", "b-1")],
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // The schemas are served as shipped.
    let (s, b) = tx.call(Method::GET, "/v1/schemas/results", None).await;
    assert_eq!(s, StatusCode::OK);
    let schema: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(schema["items"]["required"][0], "collaboratorIdentification");

    // Abort deletes an open transaction; a committed one is 409.
    let (s, _) = tx
        .call(Method::DELETE, &format!("/v1/transactions/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = tx
        .call(Method::GET, &format!("/v1/transactions/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let id = tx.create().await;
    tx.commit(&id, "").await;
    let (s, _) = tx
        .call(Method::DELETE, &format!("/v1/transactions/{id}"), None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = tx.commit(&id, "?startDate=2000-13-01").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn open_and_backlog_limits_are_429() {
    let app = crate::support::TestApp::builder()
        .with_config(|c| {
            let t = &mut c.families.transactions;
            t.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            t.transactions_max_open = 2;
            t.transactions_max_backlog = 1;
            t.transactions_max_items = 3;
        })
        .spawn()
        .await;
    let tx = app.transactions(SEED_TOKEN);
    let a = tx.create().await;
    let b = tx.create().await;
    let (s, _, body) = tx.raw(Method::POST, "/v1/transactions", None, &[]).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let items = json!([{"indicatorId": "1", "name": "n"}, {"indicatorId": "2", "name": "n"}]);
    tx.post("indicators", &a, items.clone()).await;
    let (s, _) = tx.send(Method::POST, "indicators", &a, &items).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // No worker runs: the first commit waits in the queue, the second is refused.
    assert_eq!(tx.commit(&a, "").await.0, StatusCode::OK);
    let (s, retry, _) = tx
        .raw(Method::POST, &format!("/v1/transactions/{b}"), None, &[])
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("5"));
    app.drain().await;
    assert_eq!(tx.commit(&b, "").await.0, StatusCode::OK);
    // The listing pages by status.
    app.drain().await;
    let (_, page) = tx
        .call(Method::GET, "/v1/transactions?status=7&limit=1", None)
        .await;
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = tx
        .call(
            Method::GET,
            &format!("/v1/transactions?status=7&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    let next: Value = serde_json::from_str(&next).unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_ne!(next["data"][0]["_id"], page["data"][0]["_id"]);
    let (_, none) = tx
        .call(Method::GET, "/v1/transactions?status=1", None)
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&none).unwrap()["data"],
        json!([])
    );
}
