//! Fuzz target `frame`: wire frames as they arrive from any peer, gateway
//! or relay (`tincan_core::wire`).
//!
//! Checks, on any bytes: [`wire::decode`] never panics; a frame it decodes
//! encodes again and decodes to the same frame; and [`FrameDecoder`] fed the
//! same bytes in pieces (sizes taken from the input) yields exactly the
//! frames, and the error, that decoding the whole buffer frame by frame does.

use tincan_core::wire::{self, DecodeError, Frame, FrameDecoder};

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let (whole, end) = decode_all(data);
    for frame in &whole {
        let bytes = wire::encode(frame).expect("a decoded frame encodes again");
        let (again, used) = wire::decode(&bytes).expect("an encoded frame decodes");
        assert_eq!(used, bytes.len());
        assert_eq!(&again, frame, "frame changed in a round trip");
    }

    // The same bytes through the streaming decoder, in pieces of 1 to 64
    // bytes chosen by the input itself, pulling frames between pieces.
    let mut decoder = FrameDecoder::new();
    let mut streamed = Vec::new();
    let mut error = None;
    let mut rest = data;
    let mut step = 0;
    while !rest.is_empty() && error.is_none() {
        let size = 1 + usize::from(data[step % data.len()] % 64);
        step += 1;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        decoder.feed(piece);
        pull(&mut decoder, &mut streamed, &mut error);
    }
    pull(&mut decoder, &mut streamed, &mut error);
    assert_eq!(streamed, whole, "streaming and whole-buffer frames differ");
    assert_eq!(error, end, "streaming and whole-buffer errors differ");
}

/// Decodes frames from the front of `data` until it runs out; the frames
/// and the error that stopped decoding (none when it stopped at a partial
/// frame).
fn decode_all(mut data: &[u8]) -> (Vec<Frame>, Option<DecodeError>) {
    let mut frames = Vec::new();
    loop {
        match wire::decode(data) {
            Ok((frame, used)) => {
                assert!(used > 0 && used <= data.len());
                frames.push(frame);
                data = &data[used..];
            }
            Err(DecodeError::Truncated { .. }) => return (frames, None),
            Err(error) => return (frames, Some(error)),
        }
    }
}

/// Pulls every frame the decoder has ready.
fn pull(decoder: &mut FrameDecoder, frames: &mut Vec<Frame>, error: &mut Option<DecodeError>) {
    if error.is_some() {
        return;
    }
    loop {
        match decoder.poll_frame() {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return,
            Err(e) => {
                *error = Some(e);
                return;
            }
        }
    }
}
