//! Receipts the hub returns to a sender, following the ePhyto hub's model: the hub accepts or
//! rejects a submission, and later reports it delivered, delivered with warnings, or failed,
//! as the addressee acknowledges it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The hub checked and stored the submission and will deliver it.
    Accepted,
    /// The hub refused the submission; `problems` lists every reason.
    Rejected,
    /// The addressee's system acknowledged the document.
    Delivered,
    /// The addressee acknowledged the document with warnings.
    DeliveredWithWarnings,
    /// The document could not be delivered, or the addressee refused it.
    Failed,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Delivered => "delivered",
            Self::DeliveredWithWarnings => "delivered_with_warnings",
            Self::Failed => "failed",
        }
    }
}

/// A receipt: the body of a `receipt` message and one entry of a message's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Receipt {
    pub status: ReceiptStatus,
    /// The `message_id` of the submission this receipt answers.
    pub message_id: Uuid,
    /// The hub's own id for the submission, stable across all its receipts.
    pub tracking_id: Uuid,
    /// When the hub recorded what this receipt reports (UTC, microseconds).
    pub hub_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addressee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_number: Option<String>,
    /// Errors (for `rejected` and `failed`) or warnings (for the other statuses).
    #[serde(default)]
    pub problems: Vec<Problem>,
}
