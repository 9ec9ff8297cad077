//! Helpers shared by the end-to-end tests.

use std::time::Duration;

use epix_shared::{Receipt, ReceiptStatus};
use epix_spoke::{Delivered, Receipts};
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);

/// Logs to the test output when `TEST_LOG` is set.
pub fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,lapin=warn,tokio_postgres=warn")
            .with_test_writer()
            .try_init();
    }
}

/// Takes receipts until one for `message_id` has `status`; returns every receipt for
/// `message_id` seen on the way, the wanted one last.
pub async fn receipts_until(
    receipts: &mut Receipts,
    message_id: Uuid,
    status: ReceiptStatus,
) -> Vec<Receipt> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let received = receipts.next().await.expect("the receipt queue stays open");
            let receipt = received.receipt.clone().expect("receipts parse");
            received.ack().await.expect("ack");
            if receipt.message_id != message_id {
                continue;
            }
            let done = receipt.status == status;
            seen.push(receipt);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no {status:?} receipt for {message_id} within {WAIT:?}; saw {seen:?}"
    );
    seen
}

/// Waits for the next delivered document.
pub async fn next_delivery(inbox: &mut epix_spoke::Inbox) -> Delivered {
    tokio::time::timeout(WAIT, inbox.next())
        .await
        .expect("a delivery arrives in time")
        .expect("the inbox stays open")
}
