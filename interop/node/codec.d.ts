export {
  PROTOCOL,
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  Decoder,
  DecoderEvent,
  DecoderOptions,
  Role,
  encodeHeader,
  handshakeByte,
} from './index';

/** Largest payload this process can hold: min(2^32 - 1, buffer.constants.MAX_LENGTH). */
export declare const EFFECTIVE_MAX_MESSAGE_SIZE: number;

/**
 * Most bytes the decoder allocates for a payload before its bytes arrive
 * (16 MiB); the buffer then doubles as they do, up to the announced length.
 */
export declare const PREALLOCATE: number;

/** Resolve a maxMessageSize option to the limit actually enforced. */
export declare function resolveMaxMessageSize(value?: number | null): number;
