import type { ErrorBody } from '../types.ts';

/** What the console server or the page's own fetch said, in words a person can act on. */
export class ConsoleError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const readable = async (response: Response): Promise<string> => {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (typeof body.error === 'string') return body.error;
  } catch {
    // not JSON: the text itself, if short enough to be a message
  }
  return text.trim() !== '' && text.length < 400
    ? text
    : `${response.status} ${response.statusText}`;
};

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      ...init,
      headers: {
        ...(init.method && init.method !== 'GET' ? { 'x-maas-console': '1' } : {}),
        ...init.headers,
      },
    });
  } catch {
    throw new ConsoleError(
      `the console server at ${location.origin} does not answer: is \`maas console\` (or \`npm start\`) still running?`,
    );
  }
  if (!response.ok) throw new ConsoleError(await readable(response), response.status);
  return (await response.json()) as T;
}

export const post = <T>(path: string, body: unknown): Promise<T> =>
  api<T>(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** A PUT with upload progress, which fetch cannot report. */
export function putWithProgress<T>(
  path: string,
  body: Blob,
  onProgress: (loaded: number, total: number) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', path);
    xhr.setRequestHeader('x-maas-console', '1');
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.total || body.size);
    xhr.onerror = () =>
      reject(
        new ConsoleError(`the upload to ${location.origin} failed: is the console still running?`),
      );
    xhr.onload = () => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {
        parsed = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(parsed as T);
      else {
        const error = (parsed as Partial<ErrorBody> | undefined)?.error;
        reject(new ConsoleError(error ?? `the upload answered ${xhr.status}`, xhr.status));
      }
    };
    xhr.send(body);
  });
}
