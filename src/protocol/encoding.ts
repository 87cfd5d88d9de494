import { gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.ts';
import type { HttpRequest } from './http.ts';
import type { ProtocolLimits } from './limits.ts';

/** the request encodings accepted: what `tritonclient` sends with `request_compression_algorithm` */
export const CONTENT_ENCODINGS = ['gzip', 'deflate', 'identity'] as const;

const isTooLarge = (err: unknown): boolean =>
  (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError;

/**
 * Undoes `Content-Encoding` on a request body. The body cap applies to the decompressed bytes,
 * and decompression stops as soon as it is passed, so a small body that inflates to gigabytes (a
 * decompression bomb) costs at most the cap in memory and answers 413. Returns the request with
 * the plain body and no `content-encoding` header.
 */
export function decodeContentEncoding(request: HttpRequest, limits: ProtocolLimits): HttpRequest {
  const header = request.headers['content-encoding']?.trim().toLowerCase() ?? '';
  if (header === '' || header === 'identity') return request;
  const { body } = request;
  const headers = { ...request.headers };
  delete headers['content-encoding'];
  if (header !== 'gzip' && header !== 'x-gzip' && header !== 'deflate') {
    throw new UnsupportedMediaTypeError(
      `Content-Encoding ${header} is not supported; send the body uncompressed, or compressed with gzip or deflate (one encoding)`,
    );
  }
  if (body === undefined || body.byteLength === 0) return { ...request, headers };
  const options = { maxOutputLength: limits.maxBodyBytes };
  let plain: Buffer;
  try {
    if (header === 'deflate') {
      // `deflate` means the zlib format (RFC 9110), which tritonclient sends; some clients send
      // the raw deflate stream instead.
      try {
        plain = inflateSync(body, options);
      } catch (err) {
        if (isTooLarge(err)) throw err;
        plain = inflateRawSync(body, options);
      }
    } else {
      plain = gunzipSync(body, options);
    }
  } catch (err) {
    if (isTooLarge(err)) {
      throw new PayloadTooLargeError(
        `the ${header} request body decompresses to more than the cap of ${limits.maxBodyBytes} bytes; send smaller batches`,
        { cause: err },
      );
    }
    throw new InvalidRequestError(
      `the request body is not valid ${header} data (${(err as Error).message}); compress the whole body once, or send it uncompressed without Content-Encoding`,
      { cause: err },
    );
  }
  return {
    ...request,
    headers,
    body: new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength),
  };
}
