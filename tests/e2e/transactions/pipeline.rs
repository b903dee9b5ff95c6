//! The pipeline: required fields per resource, the stages' rules, per-item
//! errors, the consolidated store and the status webhooks.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::Receiver;
use crate::support::api::transactions::{SEED_TOKEN, spawn_with_tenants};

fn collaborator(id: &str) -> Value {
    json!({"name": format!("C{id}"), "identification": id, "genre": "F", "active": true, "birthDate": "1990-01-01"})
}

#[tokio::test]
async fn every_resource_requires_its_fields() {
    let app = spawn_with_tenants().await;
    let tx = app.transactions(SEED_TOKEN);
    let id = tx.create().await;
    let cases = [
        (
            "collaborators",
            collaborator("1"),
            ["name", "identification", "genre", "active", "birthDate"].as_slice(),
        ),
        (
            "indicators",
            json!({"indicatorId": "i", "name": "n"}),
            &["indicatorId", "name"],
        ),
        (
            "attributes",
            json!({"collaboratorIdentification": "1", "name": "area", "value": "x", "date": "2000-01-01"}),
            &["collaboratorIdentification", "name", "value"],
        ),
        (
            "hierarchies",
            json!({"collaboratorIdentification": "1", "levelName": "l", "levelWeight": 1, "date": "2000-01-01"}),
            &["collaboratorIdentification", "levelName", "levelWeight"],
        ),
        (
            "results",
            json!({"collaboratorIdentification": "1", "indicatorId": "i", "result": 1.5, "date": "2000-01-01"}),
            &[
                "collaboratorIdentification",
                "indicatorId",
                "result",
                "date",
            ],
        ),
    ];
    for (resource, item, required) in cases {
        let (s, b) = tx
            .send(Method::POST, resource, &id, &json!([item.clone()]))
            .await;
        assert_eq!(s, StatusCode::OK, "{resource}: {b}");
        for (i, field) in required.iter().enumerate() {
            let mut bad = item.clone();
            bad.as_object_mut().unwrap().remove(*field);
            let (s, b) = tx
                .send(Method::POST, resource, &id, &json!([item.clone(), bad]))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{resource} without {field}");
            let v: Value = serde_json::from_str(&b).unwrap();
            assert_eq!(v["code"], 302);
            assert_eq!(v["params"]["key"], *field);
            assert_eq!(v["schemaPath"], format!("/required/{i}"));
            assert!(v["message"].as_str().unwrap().contains("at index 1"), "{b}");
        }
    }
    assert_eq!(tx.get(&id).await["data"]["counts"]["received"], 5);
}

#[tokio::test]
async fn cross_resource_rules_window_and_errors() {
    let app = spawn_with_tenants().await;
    let tx = app.transactions(SEED_TOKEN);
    let id = tx.create().await;
    tx.post(
        "collaborators",
        &id,
        json!([collaborator("1"), collaborator("2")]),
    )
    .await;
    tx.post(
        "indicators",
        &id,
        json!([{"indicatorId": "sales", "name": "Sales"}]),
    )
    .await;
    tx.post("results", &id, json!([
        {"collaboratorIdentification": "1", "indicatorId": "sales", "result": 10, "date": "2000-01-05"},
        {"collaboratorIdentification": "9", "indicatorId": "sales", "result": 10, "date": "2000-01-05"},
        {"collaboratorIdentification": "1", "indicatorId": "nope", "result": 10, "date": "2000-01-05"},
        {"collaboratorIdentification": "2", "indicatorId": "sales", "result": 10, "date": "2001-01-05"},
        {"collaboratorIdentification": "2", "indicatorId": "sales", "result": 3, "date": "2000-01-06"}
    ])).await;
    // Hierarchies without attributes: all of them are invalid.
    tx.post("hierarchies", &id, json!([
        {"collaboratorIdentification": "1", "levelName": "boss", "levelWeight": 1, "date": "2000-01-05"}
    ])).await;
    // A later result with the same natural key wins (PUT merges).
    let (s, _) = tx.send(Method::PUT, "results", &id, &json!([
        {"collaboratorIdentification": "2", "indicatorId": "sales", "result": 4, "date": "2000-01-06"}
    ])).await;
    assert_eq!(s, StatusCode::OK);
    tx.commit(&id, "?startDate=2000-01-01&endDate=2000-01-31")
        .await;
    app.drain().await;
    let v = tx.get(&id).await;
    assert_eq!(v["data"]["status"], 10, "{v}");
    assert_eq!(v["data"]["descStatus"], "DoneWithErrors");
    let c = &v["data"]["counts"];
    assert_eq!(
        (
            c["received"].as_u64(),
            c["skipped"].as_u64(),
            c["superseded"].as_u64()
        ),
        (Some(10), Some(1), Some(1))
    );
    assert_eq!(
        (
            c["valid"].as_u64(),
            c["invalid"].as_u64(),
            c["consolidated"].as_u64()
        ),
        (Some(5), Some(3), Some(5))
    );
    let errors = &v["data"]["errors"];
    assert_eq!(
        errors[0],
        json!({"resource": "results", "batch": 2, "index": 1, "identification": "9",
        "path": "/collaboratorIdentification", "message": "collaborator 9 does not exist"})
    );
    assert_eq!(errors[1]["message"], "indicator nope does not exist");
    assert_eq!(
        errors[2]["message"],
        "hierarchies must be sent in the same transaction as attributes"
    );
    let (_, page) = tx
        .call(
            Method::GET,
            &format!("/v1/transactions/{id}/errors?offset=1&limit=1"),
            None,
        )
        .await;
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["total"], 3);
    assert_eq!(page["next_offset"], 2);
    assert_eq!(page["data"][0]["path"], "/indicatorId");

    let (s, results) = tx.record("results", "2").await;
    assert_eq!(s, StatusCode::OK);
    let results: Value = serde_json::from_str(&results).unwrap();
    assert_eq!(results["data"].as_array().unwrap().len(), 1, "{results}");
    assert_eq!(results["data"][0]["result"], 4);
    let (_, list) = tx
        .call(Method::GET, "/v1/collaborators?limit=1", None)
        .await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["data"][0]["identification"], "1");
    assert_eq!(list["next"], "1");
    assert_eq!(tx.record("hierarchies", "1").await.0, StatusCode::NOT_FOUND);

    // A second transaction: a PUT of a stored collaborator merges into it
    // (__v counts), a PUT of an unknown one is an error, results may name
    // what earlier transactions consolidated.
    let id2 = tx.create().await;
    let (s, _) = tx.send(Method::PUT, "collaborators", &id2, &json!([
        {"name": "Renamed", "identification": "1", "genre": "F", "active": false, "birthDate": "1990-01-01"},
        {"name": "Ghost", "identification": "77", "genre": "F", "active": false, "birthDate": "1990-01-01"}
    ])).await;
    assert_eq!(s, StatusCode::OK);
    tx.post("results", &id2, json!([{"collaboratorIdentification": "1", "indicatorId": "sales", "result": 1, "date": "2000-02-01"}])).await;
    tx.commit(&id2, "").await;
    app.drain().await;
    let v = tx.get(&id2).await;
    assert_eq!(v["data"]["status"], 10, "{v}");
    assert_eq!(v["data"]["counts"]["consolidated"], 2);
    let (_, c1) = tx.record("collaborators", "1").await;
    let c1: Value = serde_json::from_str(&c1).unwrap();
    assert_eq!(c1["data"]["__v"], 1);
    assert_eq!(c1["data"]["name"], "Renamed");
    assert_eq!(c1["data"]["stackId"], id2.as_str());

    // Nothing valid at all: Invalidated, nothing consolidated.
    let id3 = tx.create().await;
    tx.post("results", &id3, json!([{"collaboratorIdentification": "404", "indicatorId": "sales", "result": 1, "date": "2000-02-01"}])).await;
    tx.commit(&id3, "").await;
    app.drain().await;
    let v = tx.get(&id3).await;
    assert_eq!(v["data"]["status"], 8);
    assert_eq!(v["data"]["descStatus"], "Invalidated");
    assert_eq!(tx.record("results", "404").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hierarchies_and_attributes_travel_together() {
    let app = spawn_with_tenants().await;
    let tx = app.transactions(SEED_TOKEN);
    let id = tx.create().await;
    tx.post(
        "collaborators",
        &id,
        json!([collaborator("1"), collaborator("2"), collaborator("3")]),
    )
    .await;
    tx.post("hierarchies", &id, json!([
        {"collaboratorIdentification": "1", "levelName": "ceo", "levelWeight": 1, "date": "2000-01-01"},
        {"collaboratorIdentification": "2", "levelName": "vp", "levelWeight": 2, "parentIdentification": "1", "date": "2000-01-01"},
        {"collaboratorIdentification": "3", "levelName": "x", "levelWeight": 2, "parentIdentification": "4", "date": "2000-01-01"},
        {"collaboratorIdentification": "3", "levelName": "x", "levelWeight": 2, "parentIdentification": "3", "date": "2000-02-01"}
    ])).await;
    tx.post("attributes", &id, json!([
        {"collaboratorIdentification": "2", "name": "area", "value": "sales", "startDate": "2000-01-01", "endDate": "2000-12-31"},
        {"collaboratorIdentification": "2", "name": "area", "value": "sales", "date": "2000-01-01", "startDate": "2000-01-01"}
    ])).await;
    tx.commit(&id, "").await;
    app.drain().await;
    let v = tx.get(&id).await;
    assert_eq!(v["data"]["status"], 10, "{v}");
    let messages: Vec<&str> = v["data"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        vec![
            "parent 4 does not exist",
            "the parents of 3 form a cycle",
            "either date, or startDate and endDate, is required",
        ]
    );
    let (_, h) = tx.record("hierarchies", "2").await;
    let h: Value = serde_json::from_str(&h).unwrap();
    assert_eq!(h["data"][0]["parentIdentification"], "1");
    let (s, _) = tx.record("attributes", "2").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn status_webhooks_and_the_sink() {
    let hooks = Receiver::ok().await;
    let sink = Receiver::ok().await;
    let bodies = |r: &Receiver| -> Vec<Value> {
        r.received()
            .iter()
            .map(|x| serde_json::from_str(&x.body).unwrap())
            .collect()
    };
    let app = crate::support::TestApp::builder()
        .with_config(|c| {
            let t = &mut c.families.transactions;
            t.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            t.transactions_callback_policy = "fast".into();
            t.transactions_sink_url = Some(sink.url.clone());
        })
        .spawn()
        .await;
    let tx = app.transactions(SEED_TOKEN);
    let (s, b) = tx
        .call(
            Method::POST,
            "/v1/transactions",
            Some(&json!({"callback_url": hooks.url}).to_string()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = serde_json::from_str::<Value>(&b).unwrap()["data"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    tx.post("collaborators", &id, json!([collaborator("1")]))
        .await;
    tx.commit(&id, "").await;
    app.settle().await;
    let statuses: Vec<u64> = bodies(&hooks)
        .iter()
        .map(|b| b["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![2, 3, 4, 5, 6, 7]);
    let chunks = bodies(&sink);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["items"][0]["identification"], "1");
    let (s, _) = tx
        .call(
            Method::POST,
            "/v1/transactions",
            Some(r#"{"callback_url": "ftp://x"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn callback_urls_are_checked_like_every_callback_url() {
    let app = spawn_with_tenants().await;
    let tx = app.transactions(SEED_TOKEN);
    let create = |body: String| {
        let tx = &tx;
        async move {
            let (s, b) = tx
                .call(Method::POST, "/v1/transactions/", Some(&body))
                .await;
            (s, serde_json::from_str::<Value>(&b).unwrap())
        }
    };
    let long = format!("https://x.example/{}", "a".repeat(2048));
    for (url, says) in [
        (
            json!("ftp://x.example/"),
            "callback_url: url scheme must be http or https",
        ),
        (
            json!("/hook"),
            "callback_url: url is not a valid absolute URL: relative URL without a base",
        ),
        (
            json!("http://169.254.169.254/latest"),
            "callback_url: address 169.254.169.254 is refused",
        ),
        (
            json!("http://[::ffff:169.254.169.254]/"),
            "callback_url: address ::ffff:169.254.169.254 is refused",
        ),
        (json!(long), "callback_url: url is longer than 2048 bytes"),
        (json!(42), "callback_url: must be a string (an http(s) URL)"),
    ] {
        let (s, v) = create(json!({"callback_url": url}).to_string()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {v}");
        assert_eq!((&v["status"], &v["name"]), (&json!(400), &json!("Error")));
        assert!(
            v["message"].as_str().unwrap().starts_with(says),
            "{url}: {v}"
        );
    }
    let (s, v) = create(json!({"callback_url": "https://hooks.example/tx"}).to_string()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // --allow-link-local lets them through, as for every family.
    let allowed = crate::support::TestApp::builder()
        .with_config(|c| {
            c.families.transactions.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            c.outbox.allow_link_local = true;
        })
        .spawn()
        .await;
    let (s, b) = allowed
        .transactions(SEED_TOKEN)
        .call(
            Method::POST,
            "/v1/transactions/",
            Some(r#"{"callback_url": "http://169.254.169.254/latest"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // A refused sink stops the API (and the worker) at startup.
    let mut config = app.config.clone();
    config.families.transactions.transactions_sink_url = Some("http://169.254.169.254/".into());
    let err = switchyard_api::build(app.redis.clone(), app.keys.clone(), config)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--transactions-sink-url"), "{err}");
}

#[tokio::test]
async fn attributes_and_hierarchies_are_consolidated_as_date_intervals() {
    let app = spawn_with_tenants().await;
    let tx = app.transactions(SEED_TOKEN);
    let attr = |value: &str, from: &str, to: &str| json!({"collaboratorIdentification": "1", "name": "area", "value": value, "startDate": from, "endDate": to});
    let hier = |weight: u64, from: &str, to: &str| json!({"collaboratorIdentification": "1", "levelName": "l", "levelWeight": weight, "startDate": from, "endDate": to});
    let id = tx.create().await;
    tx.post("collaborators", &id, json!([collaborator("1")]))
        .await;
    tx.post(
        "attributes",
        &id,
        json!([attr("sales", "2000-01-01", "2000-12-31"), {"collaboratorIdentification": "1", "name": "team", "value": "a", "date": "2000-03-01"}]),
    )
    .await;
    tx.post(
        "hierarchies",
        &id,
        json!([hier(1, "2000-01-01", "2000-12-31")]),
    )
    .await;
    tx.commit(&id, "").await;
    app.drain().await;
    assert_eq!(tx.get(&id).await["data"]["status"], 7);

    // A later transaction puts "support" over March..May: the year is cut
    // in two around it; a PUT of the hierarchy from July merges into the
    // record in effect then and cuts it back to June.
    let id2 = tx.create().await;
    tx.post(
        "attributes",
        &id2,
        json!([attr("support", "2000-03-01", "2000-05-31")]),
    )
    .await;
    let (s, b) = tx
        .send(Method::PUT, "hierarchies", &id2, &json!([{"collaboratorIdentification": "1", "levelWeight": 1, "levelName": "boss", "startDate": "2000-07-01", "endDate": "2000-12-31"}]))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    tx.commit(&id2, "").await;
    app.drain().await;
    let v = tx.get(&id2).await;
    assert_eq!(v["data"]["status"], 7, "{v}");
    assert_eq!(
        v["data"]["counts"]["consolidated"], 2,
        "trims are not items"
    );

    let records = |resource: &'static str, query: &'static str| {
        let tx = &tx;
        async move {
            let (s, b) = tx
                .call(Method::GET, &format!("/v1/{resource}/1{query}"), None)
                .await;
            assert_eq!(s, StatusCode::OK, "{b}");
            let v: Value = serde_json::from_str(&b).unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{}={} {}..{} v{}",
                        r["name"].as_str().or(r["levelName"].as_str()).unwrap(),
                        r["value"].as_str().unwrap_or_default(),
                        r["validFrom"].as_str().unwrap(),
                        r["validTo"].as_str().unwrap(),
                        r["__v"]
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        records("attributes", "").await,
        [
            "area=sales 2000-01-01..2000-02-29 v0",
            "area=support 2000-03-01..2000-05-31 v0",
            "area=sales 2000-06-01..2000-12-31 v0",
            "team=a 2000-03-01..2000-03-01 v0",
        ]
    );
    assert_eq!(
        records("attributes", "?date=2000-03-01").await,
        [
            "area=support 2000-03-01..2000-05-31 v0",
            "team=a 2000-03-01..2000-03-01 v0"
        ]
    );
    assert_eq!(
        records("attributes", "?date=2000-06-01").await,
        ["area=sales 2000-06-01..2000-12-31 v0"]
    );
    assert_eq!(
        records("hierarchies", "").await,
        [
            "l= 2000-01-01..2000-06-30 v0",
            "boss= 2000-07-01..2000-12-31 v0"
        ]
    );
    let (_, b) = tx
        .call(Method::GET, "/v1/hierarchies/1?date=2000-08-15", None)
        .await;
    let h: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(h["data"][0]["stackId"], id2.as_str());
    assert_eq!(
        h["data"][0]["levelWeight"], 1,
        "merged from the record in effect"
    );
    let (s, _) = tx
        .call(Method::GET, "/v1/attributes/1?date=2001-01-01", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = tx
        .call(Method::GET, "/v1/attributes/1?date=tomorrow", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // Listable, in key order (collaborator, name, start).
    let (_, list) = tx.call(Method::GET, "/v1/attributes?limit=10", None).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 4, "{list}");
    assert_eq!(list["data"][1]["value"], "support");
}
