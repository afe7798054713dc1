//! The gRPC message codec of `grpc_user`: requests go out as bytes already
//! encoded (a static payload is encoded once, at start), replies come back
//! decoded into a [`DynamicMessage`] of the method's output type, which checks
//! that they are well-formed. Servers built on the same codec (the tests') decode
//! requests with the method's input type.

use bytes::{BufMut, Bytes};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Encodes protobuf-encoded bytes as they are; decodes messages of one type.
#[derive(Debug, Clone)]
pub struct DynamicCodec {
    decode_as: MessageDescriptor,
}

impl DynamicCodec {
    /// A codec whose decoder reads messages of type `decode_as`.
    pub fn new(decode_as: MessageDescriptor) -> Self {
        Self { decode_as }
    }
}

impl Codec for DynamicCodec {
    type Encode = Bytes;
    type Decode = DynamicMessage;
    type Encoder = BytesEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> DynamicDecoder {
        DynamicDecoder {
            decode_as: self.decode_as.clone(),
        }
    }
}

/// Writes an encoded message as it is.
#[derive(Debug)]
pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// Decodes one message of a type known at run time.
#[derive(Debug)]
pub struct DynamicDecoder {
    decode_as: MessageDescriptor,
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        let mut message = DynamicMessage::new(self.decode_as.clone());
        message.merge(src).map_err(|e| {
            Status::internal(format!(
                "cannot decode a `{}`: {e}",
                self.decode_as.full_name()
            ))
        })?;
        Ok(Some(message))
    }
}
