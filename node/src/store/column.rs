//! Decoding raw column values into core types.
//!
//! Row closures only copy SQLite values out (`Vec<u8>`, `i64`, `String`);
//! the functions here turn them into ids and numbers and report anything
//! that does not fit as [`StoreError::Corrupt`], naming the column, so a
//! damaged file produces an error or a logged skip, never a panic.

use tincan_core::id::ID_LEN;
use tincan_core::{DeviceId, MessageId, UserId};

use super::StoreError;

fn fixed<const N: usize>(bytes: &[u8], column: &str) -> Result<[u8; N], StoreError> {
    <[u8; N]>::try_from(bytes).map_err(|_| {
        StoreError::Corrupt(format!("{column} has {} bytes, expected {N}", bytes.len()))
    })
}

/// A user id column.
pub(super) fn user(bytes: &[u8], column: &str) -> Result<UserId, StoreError> {
    fixed::<ID_LEN>(bytes, column).map(UserId)
}

/// A device id column.
pub(super) fn device(bytes: &[u8], column: &str) -> Result<DeviceId, StoreError> {
    fixed::<ID_LEN>(bytes, column).map(DeviceId)
}

/// A message id column.
pub(super) fn message_id(bytes: &[u8], column: &str) -> Result<MessageId, StoreError> {
    fixed::<16>(bytes, column).map(MessageId)
}

/// A non-negative integer column (timestamps, counters).
pub(super) fn unsigned<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column} out of range: {value}")))
}

/// A nullable non-negative integer column.
pub(super) fn opt_unsigned<T: TryFrom<i64>>(
    value: Option<i64>,
    column: &str,
) -> Result<Option<T>, StoreError> {
    value.map(|v| unsigned(v, column)).transpose()
}

/// A `u64` field as an SQLite integer; values above `i64::MAX` are refused
/// rather than wrapped to negative numbers.
pub(super) fn int(value: u64, field: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// A nullable `u64` field as an SQLite integer.
pub(super) fn opt_int(value: Option<u64>, field: &'static str) -> Result<Option<i64>, StoreError> {
    value.map(|v| int(v, field)).transpose()
}

/// Runs `decode` on every raw row, skipping (with a warning) rows that do
/// not decode, so list queries still return the healthy rows.
pub(super) fn decode_all<R, T>(
    raws: Vec<R>,
    table: &str,
    decode: impl Fn(R) -> Result<T, StoreError>,
) -> Vec<T> {
    raws.into_iter()
        .filter_map(|raw| match decode(raw) {
            Ok(v) => Some(v),
            Err(error) => {
                tracing::warn!(table, %error, "skipping undecodable row");
                None
            }
        })
        .collect()
}

/// Reads columns 0, 1, 2 as `(blob, text, integer)`: the row of the small
/// keyed lists (an id, a name, a time), decoded afterwards.
pub(super) fn blob_text_int(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Vec<u8>, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_lengths_and_negatives_are_corrupt() {
        assert!(matches!(user(&[0; 19], "u"), Err(StoreError::Corrupt(_))));
        assert!(matches!(device(&[0; 21], "d"), Err(StoreError::Corrupt(_))));
        assert!(matches!(message_id(&[], "m"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            unsigned::<u64>(-1, "t"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            unsigned::<u32>(i64::from(u32::MAX) + 1, "n"),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(user(&[7; 20], "u").unwrap(), UserId([7; 20]));
        assert_eq!(opt_unsigned::<u64>(None, "t").unwrap(), None);
        assert_eq!(opt_unsigned::<u64>(Some(5), "t").unwrap(), Some(5));
        assert_eq!(int(5, "t").unwrap(), 5);
        assert!(matches!(
            opt_int(Some(u64::MAX), "t"),
            Err(StoreError::OutOfRange { field: "t", .. })
        ));
    }
}
