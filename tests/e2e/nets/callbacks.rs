//! Petri nets through HTTP: the acceptance nets of the original
//! implementation, nested splits, validation, the maintenance API.

use reqwest::StatusCode;
use serde_json::json;

use super::{bodies, distinct};
use crate::support::Receiver;
use crate::support::spawn_app;

#[tokio::test]
async fn one_notify_fires_once_and_the_net_completes() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let id = app
        .nets()
        .create(json!({"initialMarking": ["start"], "transitions": [
            {"inputs": ["start"], "outputs": ["done"], "action": {"type": "notify", "url": rx.url}}
        ]}))
        .await;
    app.drain().await;
    assert_eq!(rx.count(), 1);
    let b = &bodies(&rx)[0];
    assert_eq!(b["net_key"], id.as_str());
    assert_eq!(b["color"], 0);
    assert_eq!(
        b["group"],
        json!({"idx": 0, "begin": 0, "end": 1, "parent_color": null, "parent_color_group_idx": null,
               "color_lineage": [], "begin_lineage": []})
    );
    assert_eq!(b["token"]["color_group"]["index"], 0);
    assert_eq!(rx.received()[0].headers["content-type"], "application/json");
    let n = app.nets().get(&id).await;
    assert_eq!(n["status"], "completed", "{n}");
    assert_eq!(n["fired"], 1);
    app.drain().await;
    assert_eq!(rx.count(), 1, "exactly one callback");
}

#[tokio::test]
async fn two_notifies_in_a_row_each_call_back_once() {
    let app = spawn_app().await;
    let (a, b) = (Receiver::ok().await, Receiver::ok().await);
    app.nets()
        .create(json!({"initialMarking": ["start"], "transitions": [
            {"inputs": ["start"], "outputs": ["mid"], "action": {"type": "notify", "url": a.url}},
            {"inputs": ["mid"], "outputs": ["end"], "action": {"type": "notify", "url": b.url}}
        ]}))
        .await;
    app.drain().await;
    assert!(a.count() == 1 && b.count() == 1);
}

#[tokio::test]
async fn a_two_input_transition_waits_for_the_callback() {
    let app = spawn_app().await;
    let (first, second) = (Receiver::ok().await, Receiver::ok().await);
    let id = app.nets().create(json!({"initialMarking": ["start"], "transitions": [
        {"inputs": ["start"], "outputs": ["wait"],
         "action": {"type": "notify", "url": first.url, "response_places": {"done": "response"}}},
        {"inputs": ["wait", "response"], "outputs": ["end"], "action": {"type": "notify", "url": second.url}}
    ]}))
    .await;
    app.drain().await;
    assert_eq!(first.count(), 1);
    let (_, ex) = app.get(&format!("/v1/nets/{id}/explain")).await;
    assert_eq!(
        ex["transitions"][1]["waiting"][0]["missing"],
        json!(["response"]),
        "{ex}"
    );
    assert_eq!(second.count(), 0);
    let cb = &bodies(&first)[0];
    assert_eq!(
        app.nets()
            .answer(cb, "done", json!({"result": "fine"}))
            .await,
        StatusCode::CREATED
    );
    // The receiver retries its PUT: idempotent.
    assert_eq!(
        app.nets()
            .answer(cb, "done", json!({"result": "fine"}))
            .await,
        StatusCode::OK
    );
    app.drain().await;
    assert_eq!(second.count(), 1);
    assert_eq!(
        bodies(&second)[0]["data"]["result"],
        "fine",
        "response data travels with the token"
    );
    let n = app.nets().get(&id).await;
    assert_eq!(n["status"], "completed", "{n}");
}

#[tokio::test]
async fn split_join_sends_1_1_3_1_callbacks() {
    let app = spawn_app().await;
    let (size, created, work, fin) = (
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
    );
    let id = app.nets().create(json!({"initialMarking": ["start"], "transitions": [
        {"inputs": ["start"], "outputs": ["wait"],
         "action": {"type": "notify", "url": size.url, "response_places": {"size": "size"}, "requested_data": ["color_group_size"]}},
        {"inputs": ["wait", "size"], "outputs": ["to_split"], "action": {"type": "create-color-group", "url": created.url}},
        {"inputs": ["to_split"], "outputs": ["work"], "action": {"type": "split"}},
        {"inputs": ["work"], "outputs": ["worked"], "action": {"type": "notify", "url": work.url}},
        {"inputs": ["worked"], "outputs": ["joined"], "type": "barrier", "action": {"type": "join"}},
        {"inputs": ["joined"], "outputs": ["end"], "action": {"type": "notify", "url": fin.url}}
    ]}))
    .await;
    app.drain().await;
    assert_eq!(size.count(), 1);
    let cb = &bodies(&size)[0];
    assert_eq!(cb["requested_data"], json!(["color_group_size"]));
    app.nets()
        .answer(cb, "size", json!({"color_group_size": 3}))
        .await;
    app.drain().await;
    assert_eq!(fin.count(), 1);
    assert_eq!(
        (
            distinct(&size),
            distinct(&created),
            distinct(&work),
            distinct(&fin)
        ),
        (1, 1, 3, 1)
    );
    let mut colors: Vec<i64> = bodies(&work)
        .iter()
        .map(|b| b["color"].as_i64().unwrap())
        .collect();
    colors.sort();
    assert_eq!(colors, [1, 2, 3]);
    for b in bodies(&work) {
        assert_eq!(b["group"]["parent_color"], 0);
        assert_eq!(b["group"]["color_lineage"], json!([0]));
        assert_eq!(b["group"]["begin_lineage"], json!([1]));
    }
    assert_eq!(
        bodies(&fin)[0]["color"],
        0,
        "the join emits the parent colour"
    );
    let n = app.nets().get(&id).await;
    assert_eq!(n["status"], "completed", "{n}");
}

#[tokio::test]
async fn convert_to_parent_color_fires_once_for_the_first_child() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let id = app.nets().create(json!({"transitions": [
        {"inputs": ["start"], "outputs": ["s"], "action": {"type": "create-color-group"}},
        {"inputs": ["s"], "outputs": ["kids"], "action": {"type": "split"}},
        {"inputs": ["kids"], "outputs": ["parent"], "action": {"type": "convert-to-parent-color"}},
        {"inputs": ["parent"], "outputs": ["end"], "action": {"type": "notify", "url": rx.url}}
    ]}))
    .await;
    let (s, t) = app
        .post(
            &format!("/v1/nets/{id}/places/start/tokens"),
            json!({"color_group_size": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let root = t["color"].as_i64().unwrap();
    app.drain().await;
    assert_eq!(rx.count(), 1);
    assert_eq!(app.drain().await, 0, "nothing more to do");
    assert_eq!(rx.count(), 1, "fires once");
    assert_eq!(bodies(&rx)[0]["color"], root);
}

#[tokio::test]
async fn nested_split_inside_split_keeps_lineage() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let id = app.nets().create(json!({"initialMarking": [], "transitions": [
        {"inputs": ["start"], "outputs": ["g1"], "action": {"type": "create-color-group"}},
        {"inputs": ["g1"], "outputs": ["outer"], "action": {"type": "split"}},
        {"inputs": ["outer"], "outputs": ["g2"], "action": {"type": "create-color-group"}},
        {"inputs": ["g2"], "outputs": ["inner"], "action": {"type": "split"}},
        {"inputs": ["inner"], "outputs": ["done"], "action": {"type": "notify", "url": rx.url}},
        {"inputs": ["done"], "outputs": ["inner_joined"], "type": "barrier", "action": {"type": "join"}},
        {"inputs": ["inner_joined"], "outputs": ["outer_joined"], "type": "barrier", "action": {"type": "join"}}
    ]}))
    .await;
    // Size 2 at both levels: the child tokens inherit color_group_size.
    let (_, t) = app
        .post(
            &format!("/v1/nets/{id}/places/start/tokens"),
            json!({"color_group_size": 2}),
        )
        .await;
    let root = t["color"].clone();
    app.drain().await;
    assert_eq!(rx.count(), 4);
    let bs = bodies(&rx);
    for b in &bs {
        let cl = b["group"]["color_lineage"].as_array().unwrap();
        let bl = b["group"]["begin_lineage"].as_array().unwrap();
        assert_eq!(cl.len(), 2, "{b}");
        assert_eq!(cl[0], root, "root colour first");
        assert_eq!(bl.len(), 2);
        // The inner group's parent is the outer colour in its lineage.
        assert_eq!(b["group"]["parent_color"], cl[1]);
        let c = b["color"].as_i64().unwrap();
        assert!(
            c >= b["group"]["begin"].as_i64().unwrap() && c < b["group"]["end"].as_i64().unwrap()
        );
        assert_eq!(bl[1], b["group"]["begin"]);
    }
    let mut colors: Vec<i64> = bs.iter().map(|b| b["color"].as_i64().unwrap()).collect();
    colors.sort();
    colors.dedup();
    assert_eq!(colors.len(), 4);
    let (_, p) = app.get(&format!("/v1/nets/{id}/places")).await;
    assert!(
        p["places"]["outer_joined"]["tokens"]
            .get(root.to_string())
            .is_some(),
        "{p}"
    );
}

#[tokio::test]
async fn a_callback_that_finally_fails_marks_the_net_failed() {
    let app = spawn_app().await;
    let rx = Receiver::answering(StatusCode::BAD_REQUEST).await;
    let id = app
        .nets()
        .create(json!({"initialMarking": ["start"], "transitions": [
            {"inputs": ["start"], "outputs": ["x"], "action": {"type": "notify", "url": rx.url}}
        ]}))
        .await;
    app.settle().await;
    let n = app.nets().get(&id).await;
    assert_eq!(n["status"], "failed", "{n}");
    assert!(n["failure"].as_str().unwrap().contains("callback"), "{n}");
}

#[tokio::test]
async fn a_failed_net_expires_after_the_retention_like_a_completed_one() {
    let app = spawn_app().await;
    let rx = Receiver::answering(StatusCode::BAD_REQUEST).await;
    // A token stays in `start` (no transition consumes it), so only the
    // failure can finish this net.
    let id = app
        .nets()
        .create(json!({"initialMarking": ["start", "a"], "transitions": [
            {"inputs": ["a"], "outputs": ["x"], "action": {"type": "notify", "url": rx.url}}
        ]}))
        .await;
    app.settle().await;
    let n = app.nets().get(&id).await;
    assert_eq!(n["status"], "failed", "{n}");
    let k = app.keys.net(&id);
    let mut conn = app.server.conn();
    for key in [&k.meta, &k.marking] {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut conn).unwrap();
        let retention = app.config.families.nets.net_retention.as_millis() as i64;
        assert!(ttl > 0 && ttl <= retention, "{key}: {ttl}");
    }
}

#[tokio::test]
async fn only_the_first_answer_to_a_success_failure_subnet_counts() {
    let app = spawn_app().await;
    let (sub, ok, ko) = (
        Receiver::ok().await,
        Receiver::ok().await,
        Receiver::ok().await,
    );
    let id = app
        .nets()
        .create(json!({
            "subnets": {"subnet_A": {"type": "success-failure", "notification_url": sub.url}},
            "transitions": [
                {"inputs": ["start"], "outputs": ["subnet_A.input"]},
                {"inputs": ["subnet_A.success"], "action": {"type": "notify", "url": ok.url}},
                {"inputs": ["subnet_A.failure"], "action": {"type": "notify", "url": ko.url}}
            ]
        }))
        .await;
    app.post(&format!("/v1/nets/{id}/places/start/tokens"), json!({}))
        .await;
    app.drain().await;
    assert_eq!(sub.count(), 1);
    let cb = &bodies(&sub)[0];
    // Both answers arrive; only the first counts (one of N responses).
    app.nets().answer(cb, "success", json!({})).await;
    app.nets().answer(cb, "failure", json!({})).await;
    app.drain().await;
    assert_eq!(ok.count(), 1);
    assert_eq!(ko.count(), 0);
}

#[tokio::test]
async fn a_data_request_subnet_attaches_the_answer_to_the_token() {
    let app = spawn_app().await;
    let (ask, done) = (Receiver::ok().await, Receiver::ok().await);
    let id = app.nets().create(json!({
        "subnets": {"need": {"type": "data-request", "url": ask.url, "requested_data": ["split_size"]}},
        "transitions": [
            {"inputs": ["start"], "outputs": ["need.input"]},
            {"inputs": ["need.output"], "outputs": ["end"], "action": {"type": "notify", "url": done.url}}
        ]
    }))
    .await;
    app.post(
        &format!("/v1/nets/{id}/places/start/tokens"),
        json!({"job": 7}),
    )
    .await;
    app.drain().await;
    assert_eq!(ask.count(), 1);
    let cb = &bodies(&ask)[0];
    assert_eq!(cb["requested_data"], json!(["split_size"]));
    assert!(
        cb["response_link"].is_string(),
        "the seed's singular link: {cb}"
    );
    app.nets()
        .answer(cb, "data", json!({"split_size": 23}))
        .await;
    app.drain().await;
    assert_eq!(done.count(), 1);
    let d = &bodies(&done)[0]["data"];
    assert_eq!(
        (d["job"].as_i64(), d["split_size"].as_i64()),
        (Some(7), Some(23)),
        "{d}"
    );
    let text = app.metrics_text().await;
    assert!(
        text.contains("switchyard_net_transitions_fired_total"),
        "firings on /metrics"
    );
}

#[tokio::test]
async fn a_join_waits_for_every_colour_even_when_both_inputs_arrive_together() {
    let app = spawn_app().await;
    let fin = Receiver::ok().await;
    let id = app.nets().create(json!({"transitions": [
        {"inputs": ["start"], "outputs": ["s"], "action": {"type": "create-color-group"}},
        {"inputs": ["s"], "outputs": ["w"], "action": {"type": "split"}},
        {"inputs": ["w", "resp"], "outputs": ["a", "b"]},
        {"inputs": ["a", "b"], "outputs": ["joined"], "type": "barrier", "action": {"type": "join"}},
        {"inputs": ["joined"], "outputs": ["end"], "action": {"type": "notify", "url": fin.url}}
    ]}))
    .await;
    let (_, t) = app
        .post(
            &format!("/v1/nets/{id}/places/start/tokens"),
            json!({"color_group_size": 2}),
        )
        .await;
    let root = t["color"].as_i64().unwrap();
    let (c1, c2) = (root + 1, root + 2);
    let put = |c: i64| {
        let app = &app;
        let id = id.clone();
        async move {
            app.put(
                &format!("/v1/nets/{id}/places/resp/tokens?color={c}"),
                json!({}),
            )
            .await
            .0
        }
    };
    assert_eq!(put(c1).await, StatusCode::CREATED);
    app.drain().await;
    assert_eq!(fin.count(), 0, "one colour of two is not a group");
    let n = app.nets().get(&id).await;
    assert_eq!(n["status"], "running", "{n}");
    assert_eq!(put(c2).await, StatusCode::CREATED);
    app.drain().await;
    assert_eq!(fin.count(), 1);
    assert_eq!(bodies(&fin)[0]["color"], root);
    let n = app.nets().get(&id).await;
    assert_eq!(
        n["fired"], 6,
        "t0, t1, t2 twice, the join once, the notify once: {n}"
    );
    assert_eq!(n["status"], "completed");
}

#[tokio::test]
async fn a_transition_firing_again_for_a_colour_calls_back_again() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let id = app
        .nets()
        .create(json!({"initialMarking": ["a"], "transitions": [
            {"inputs": ["a"], "outputs": ["b"], "action": {"type": "notify", "url": rx.url}},
            {"inputs": ["b", "again"], "outputs": ["a"]}
        ]}))
        .await;
    app.drain().await;
    assert_eq!(rx.count(), 1);
    app.put(
        &format!("/v1/nets/{id}/places/again/tokens?color=0"),
        json!({}),
    )
    .await;
    app.drain().await;
    assert_eq!(distinct(&rx), 2);
}

#[tokio::test]
async fn a_group_notice_links_back_with_the_parents_own_group() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let id = app.nets().create(json!({"transitions": [
        {"inputs": ["start"], "outputs": ["s"], "action": {"type": "create-color-group", "url": rx.url, "response_places": {"ack": "acks"}}}
    ]}))
    .await;
    app.post(
        &format!("/v1/nets/{id}/places/start/tokens"),
        json!({"color_group_size": 2}),
    )
    .await;
    app.drain().await;
    assert_eq!(rx.count(), 1);
    let cb = &bodies(&rx)[0];
    assert_eq!(
        cb["group"]["end"].as_i64().unwrap() - cb["group"]["begin"].as_i64().unwrap(),
        2,
        "the notice is about the new group"
    );
    assert_eq!(
        app.nets().answer(cb, "ack", json!({})).await,
        StatusCode::CREATED,
        "its link is usable: {cb}"
    );
}

#[tokio::test]
async fn an_expire_ttl_beyond_the_limit_is_refused() {
    let app = spawn_app().await;
    let (s, e) = app
        .post("/v1/nets", json!({"transitions": [{"inputs": ["a"], "action": {"type": "expire", "ttl_seconds": 10_000_000_000_000_000u64}}]}))
        .await;
    assert_eq!(
        (s, e["where"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("body.transitions[0].action.ttl_seconds")
        )
    );
}

#[tokio::test]
async fn a_put_onto_a_token_a_transition_left_keeps_it_and_says_so() {
    let app = spawn_app().await;
    let id = app
        .nets()
        .create(json!({"initialMarking": ["a"], "transitions": [
            {"inputs": ["a"], "outputs": ["b"]},
            {"inputs": ["b", "c"], "outputs": ["d"]}
        ]}))
        .await;
    let (s, b) = app
        .put(
            &format!("/v1/nets/{id}/places/b/tokens?color=0"),
            json!({"x": 1}),
        )
        .await;
    assert_eq!(
        (s, b["already_present"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{b}"
    );
    let (_, p) = app.get(&format!("/v1/nets/{id}/places")).await;
    assert_eq!(
        p["places"]["b"]["tokens"]["0"],
        json!({}),
        "the existing token is kept"
    );
}

#[tokio::test]
async fn a_barrier_does_not_count_a_colour_a_competing_transition_took() {
    let app = spawn_app().await;
    let (fin, other) = (Receiver::ok().await, Receiver::ok().await);
    let id = app.nets().create(json!({"transitions": [
        {"inputs": ["start"], "outputs": ["g"], "action": {"type": "create-color-group"}},
        {"inputs": ["d", "x"], "outputs": ["y"], "action": {"type": "notify", "url": other.url}},
        {"inputs": ["d"], "outputs": ["j"], "type": "barrier", "action": {"type": "join"}},
        {"inputs": ["j"], "outputs": ["end"], "action": {"type": "notify", "url": fin.url}}
    ]}))
    .await;
    let (_, t) = app
        .post(
            &format!("/v1/nets/{id}/places/start/tokens"),
            json!({"color_group_size": 2}),
        )
        .await;
    let root = t["color"].as_i64().unwrap();
    let (c1, c2) = (root + 1, root + 2);
    let put = |place: &'static str, c: i64| {
        let (app, id) = (&app, id.clone());
        async move {
            app.put(
                &format!("/v1/nets/{id}/places/{place}/tokens?color={c}"),
                json!({}),
            )
            .await
            .0
        }
    };
    // The barrier counts child 1 as complete…
    assert_eq!(put("d", c1).await, StatusCode::CREATED);
    // …then the competing transition takes child 1's token…
    assert_eq!(put("x", c1).await, StatusCode::CREATED);
    app.drain().await;
    assert_eq!(other.count(), 1);
    // …so child 2 alone does not complete the group.
    assert_eq!(put("d", c2).await, StatusCode::CREATED);
    app.drain().await;
    assert_eq!(fin.count(), 0, "a join fired without every colour");
    let (_, ex) = app.get(&format!("/v1/nets/{id}/explain")).await;
    assert_eq!(
        ex["transitions"][2]["groups"],
        json!([{"group": t["color_group"].as_i64().unwrap() + 1, "complete_colors": 1, "group_size": 2}]),
        "{ex}"
    );
}
