//! Errors as one line for people: the error and each cause once. Many
//! errors name their cause in their own text (`cannot listen on ADDR:
//! {source}`), and printing the whole chain after it showed the cause
//! twice; the binaries print errors through [`one_line`].

use std::error::Error;

/// `error: cause: deeper cause`, leaving out a cause whose text is already
/// in what came before.
///
/// ```
/// let os = std::io::Error::from(std::io::ErrorKind::AddrInUse);
/// #[derive(Debug)]
/// struct Bind(std::io::Error);
/// impl std::fmt::Display for Bind {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         write!(f, "cannot listen on 127.0.0.1:1: {}", self.0)
///     }
/// }
/// impl std::error::Error for Bind {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let text = tincan_core::report::one_line(&Bind(os));
/// assert_eq!(text, "cannot listen on 127.0.0.1:1: address in use");
/// ```
pub fn one_line(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let shown = c.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        cause = c.source();
    }
    text
}
