//! The bare relay: consume a batch, insert it in one statement, republish with confirms,
//! acknowledge. No checks, no receipts: the floor under any store-and-forward hub here.

use std::sync::Arc;
use std::time::Instant;

use diesel::sql_types::{Array, Bytea, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::try_join_all;
use futures_util::{FutureExt, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation};

use crate::{Args, RunResult, histogram, permit};

const INPUT: &str = "bare.in";
const OUTPUT: &str = "bare.out";

pub async fn run(args: &Args) -> anyhow::Result<RunResult> {
    let env = epix_tests::TestEnv::new().await?;
    let mut connection = env.database().await?;
    diesel::sql_query(
        "CREATE TABLE bare_messages (message_id text PRIMARY KEY, body bytea NOT NULL)",
    )
    .execute(&mut connection)
    .await?;
    let setup = env.broker().await?;
    let channel = setup.create_channel().await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    for queue in [INPUT, OUTPUT] {
        let options = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(queue.into(), options, arguments.clone())
            .await?;
    }

    let body = permit("CH", "DE", "26CH0000000", args.lines);
    let total = args.permits;
    println!("bare relay: {total} messages of {} bytes each", body.len());

    let mut relays = tokio::task::JoinSet::new();
    for worker in 0..args.workers {
        relays.spawn(relay(
            env.amqp_url.clone(),
            env.database_url.clone(),
            args.batch,
            worker,
        ));
    }
    let receiver = tokio::spawn(receive(env.amqp_url.clone(), total));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let started = Instant::now();
    let body = Arc::new(body);
    let producers = args.spokes.max(1);
    let mut senders = tokio::task::JoinSet::new();
    for producer in 0..producers {
        let count = total / producers + usize::from(producer < total % producers);
        let url = env.amqp_url.clone();
        let body = body.clone();
        let window = args.window;
        senders.spawn(async move {
            let connection = epix_hub::amqp::connect(&url, "bare producer").await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            let mut stream = futures_util::stream::iter(0..count)
                .map(|index| {
                    let channel = channel.clone();
                    let body = body.clone();
                    async move {
                        let mut headers = FieldTable::default();
                        headers.insert("sent_us".into(), AMQPValue::LongLongInt(now_us()));
                        let properties = BasicProperties::default()
                            .with_message_id(format!("{producer}-{index}").into())
                            .with_delivery_mode(2)
                            .with_headers(headers);
                        let options = BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        };
                        let confirm = channel
                            .basic_publish("".into(), INPUT.into(), options, &body, properties)
                            .await?;
                        anyhow::Ok(confirm.await?)
                    }
                })
                .buffer_unordered(window);
            while let Some(result) = stream.next().await {
                result?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = senders.join_next().await {
        result??;
    }
    let (last, latency) = receiver.await??;
    relays.abort_all();
    let seconds = last.duration_since(started).as_secs_f64();
    Ok(RunResult {
        label: "bare relay",
        messages: total,
        seconds,
        p50_ms: latency.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: latency.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: latency.max() as f64 / 1000.0,
    })
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

async fn relay(
    amqp_url: String,
    database_url: String,
    batch_size: usize,
    worker: usize,
) -> anyhow::Result<()> {
    let connection = epix_hub::amqp::connect(&amqp_url, &format!("bare relay {worker}")).await?;
    let input = connection.create_channel().await?;
    input
        .basic_qos((batch_size * 2) as u16, BasicQosOptions::default())
        .await?;
    let output = connection.create_channel().await?;
    output
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut consumer = input
        .basic_consume(
            INPUT.into(),
            format!("bare-{worker}").into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut database = AsyncPgConnection::establish(&database_url).await?;
    loop {
        let Some(first) = consumer.next().await else {
            return Ok(());
        };
        let mut batch = vec![first?];
        while batch.len() < batch_size {
            match consumer.next().now_or_never() {
                Some(Some(delivery)) => batch.push(delivery?),
                _ => break,
            }
        }
        let ids: Vec<String> = batch
            .iter()
            .map(|d| {
                d.properties
                    .message_id()
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            })
            .collect();
        let bodies: Vec<Vec<u8>> = batch.iter().map(|d| d.data.clone()).collect();
        diesel::sql_query(
            "INSERT INTO bare_messages (message_id, body) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING",
        )
        .bind::<Array<Text>, _>(&ids)
        .bind::<Array<Bytea>, _>(&bodies)
        .execute(&mut database)
        .await?;
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let pending = try_join_all(batch.iter().map(|delivery| {
            output.basic_publish(
                "".into(),
                OUTPUT.into(),
                options,
                &delivery.data,
                delivery.properties.clone(),
            )
        }))
        .await?;
        for confirmation in try_join_all(pending).await? {
            if !matches!(confirmation, Confirmation::Ack(None)) {
                anyhow::bail!("bare relay publish not confirmed: {confirmation:?}");
            }
        }
        if let Some(last) = batch.last() {
            last.acker.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
}

async fn receive(
    amqp_url: String,
    total: usize,
) -> anyhow::Result<(Instant, hdrhistogram::Histogram<u64>)> {
    let connection = epix_hub::amqp::connect(&amqp_url, "bare receiver").await?;
    let channel = connection.create_channel().await?;
    channel.basic_qos(1000, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            OUTPUT.into(),
            "bare-receiver".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut latency = histogram();
    let mut seen = std::collections::HashSet::with_capacity(total);
    let mut last = Instant::now();
    while seen.len() < total {
        let Some(delivery) = consumer.next().await else {
            anyhow::bail!("the bare receiver's consumer closed");
        };
        let delivery = delivery?;
        let sent_us = delivery.properties.headers().as_ref().and_then(|h| {
            h.inner()
                .iter()
                .find(|(k, _)| k.as_str() == "sent_us")
                .map(|(_, v)| v.clone())
        });
        if let Some(AMQPValue::LongLongInt(sent)) = sent_us {
            latency.record((now_us() - sent).max(1) as u64)?;
        }
        seen.insert(
            delivery
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        );
        last = Instant::now();
        if seen.len() % 250 == 0 || seen.len() == total {
            delivery
                .acker
                .ack(BasicAckOptions { multiple: true })
                .await?;
        }
    }
    Ok((last, latency))
}
