import { describe, expect, it } from 'vitest';
import { fromResult, type IncomingRequest, toEvent } from '../../../local/http/index.ts';

const request = (overrides: Partial<IncomingRequest> = {}): IncomingRequest => ({
  method: 'POST',
  url: '/v2/models/iris/infer',
  rawHeaders: ['Host', 'api.example.com:3000', 'Content-Type', 'application/json'],
  body: Buffer.from('{}'),
  sourceIp: '10.0.0.1',
  requestId: 'req-1',
  receivedAt: new Date(Date.UTC(2020, 2, 12, 19, 3, 58)),
  ...overrides,
});

describe('toEvent', () => {
  it('fills the request context as API Gateway does', () => {
    const event = toEvent(request());

    expect(event.requestContext).toMatchObject({
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: 'POST', path: '/v2/models/iris/infer', sourceIp: '10.0.0.1' },
      requestId: 'req-1',
      time: '12/Mar/2020:19:03:58 +0000',
      timeEpoch: Date.UTC(2020, 2, 12, 19, 3, 58),
    });
    expect(event.queryStringParameters).toBeUndefined();
    expect(event.headers).toMatchObject({
      'x-forwarded-for': '10.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-port': '3000',
    });
  });

  it('joins duplicate headers with commas', () => {
    const event = toEvent(request({ rawHeaders: ['Accept', 'a/b', 'accept', 'c/d'] }));

    expect(event.headers.accept).toBe('a/b,c/d');
  });

  it('base64-encodes a body declared as JSON that is not valid UTF-8', () => {
    const body = Buffer.from([0x7b, 0xff, 0x7d]);

    const event = toEvent(request({ body }));

    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body ?? '', 'base64')).toEqual(body);
  });

  it('has no body field for an empty body', () => {
    const event = toEvent(request({ method: 'GET', body: Buffer.alloc(0) }));

    expect(event.body).toBeUndefined();
    expect(event.isBase64Encoded).toBe(false);
  });
});

describe('fromResult', () => {
  it('turns cookies into set-cookie headers and stringifies header values', () => {
    const response = fromResult(
      { statusCode: 204, headers: { 'X-Count': 3 }, cookies: ['a=1', 'b=2'] },
      'req-2',
    );

    expect(response.statusCode).toBe(204);
    expect(response.headers).toMatchObject({ 'x-count': '3', 'set-cookie': ['a=1', 'b=2'] });
  });

  it('sends a string result as a 200 JSON body', () => {
    const response = fromResult('"hello"', 'req-3');

    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.body.toString()).toBe('"hello"');
  });
});
