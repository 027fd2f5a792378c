//! The gRPC codec of both protocol versions: prost messages, decoded from
//! the contiguous bytes of a message rather than through tonic's
//! `DecodeBuf`, whose `Buf` calls (a bounds check and a `BytesMut` advance
//! per varint and per string) were a tenth of decoding a large request.
//! The generated services name it (`codec_path` in build.rs).

use std::marker::PhantomData;

use bytes::Buf;
use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// prost messages over gRPC, as tonic_prost's codec is, decoding from a
/// slice.
#[derive(Debug, Clone)]
pub struct ProtoCodec<T, U> {
    types: PhantomData<(T, U)>,
}

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self { types: PhantomData }
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProtoEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProtoEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(PhantomData)
    }
}

/// Encodes a `T` into tonic's buffer.
#[derive(Debug, Clone)]
pub struct ProtoEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for ProtoEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // As `Message::encode`, sized once, but the room reserved up front
        // rather than grown as a large response is written.
        buf.reserve(item.encoded_len());
        item.encode_raw(buf);
        Ok(())
    }
}

/// Decodes a `U` from one whole message.
#[derive(Debug, Clone)]
pub struct ProtoDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let len = buf.remaining();
        let chunk = buf.chunk();
        let decoded = if chunk.len() == len {
            U::decode(chunk)
        } else {
            // tonic gathers a message into one buffer, so this is a
            // decompressor's or a future tonic's: copy, then read the slice.
            U::decode(buf.copy_to_bytes(len).as_ref())
        };
        // The message is consumed whether or not it decoded; tonic reads
        // the next message's header after it.
        if buf.remaining() > 0 {
            buf.advance(buf.remaining());
        }
        decoded
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, Bytes, BytesMut};
    use futures::StreamExt;
    use http_body_util::{BodyExt, Full};
    use prost_types::Duration;
    use tonic::codec::{EncodeBody, Streaming};

    fn framed(messages: &[&[u8]]) -> Full<Bytes> {
        let mut out = BytesMut::new();
        for message in messages {
            out.put_u8(0);
            out.put_u32(u32::try_from(message.len()).expect("small"));
            out.put_slice(message);
        }
        Full::new(out.freeze())
    }

    fn decoder() -> ProtoDecoder<Duration> {
        ProtoCodec::<Duration, Duration>::default().decoder()
    }

    /// Each message of a stream decodes as prost decodes it, the buffer
    /// left at the next one's header.
    #[tokio::test]
    async fn messages_decode_as_prost_decodes_them() {
        let first = Duration {
            seconds: 3,
            nanos: 7,
        };
        let second = Duration {
            seconds: -1,
            nanos: 0,
        };
        let bytes = [first.encode_to_vec(), second.encode_to_vec()];
        let body = framed(&[&bytes[0], &bytes[1]]);
        let decoded: Vec<Duration> = Streaming::new_request(decoder(), body, None, None)
            .map(|m| m.expect("decodes"))
            .collect()
            .await;
        assert_eq!(decoded, [first, second]);
    }

    #[tokio::test]
    async fn bad_bytes_are_an_internal_error() {
        let body = framed(&[&[0x08, 0xff]]);
        let mut stream = Streaming::new_request(decoder(), body, None, None);
        let status = stream.message().await.expect_err("truncated varint");
        assert_eq!(status.code(), tonic::Code::Internal, "{status}");
    }

    #[tokio::test]
    async fn messages_encode_as_prost_encodes_them() {
        let message = Duration {
            seconds: 3,
            nanos: 7,
        };
        let encoder = ProtoCodec::<Duration, Duration>::default().encoder();
        let source = futures::stream::iter([Ok(message)]);
        let body = EncodeBody::new_client(encoder, source, None, None);
        let out = body.collect().await.expect("encodes").to_bytes();
        let expected = framed(&[&message.encode_to_vec()])
            .collect()
            .await
            .expect("framed")
            .to_bytes();
        assert_eq!(out, expected);
    }
}
