/** A size for messages: `1.5 MiB`, `2.00 GiB`, `512 bytes`. */
export const fmtBytes = (n: number): string =>
  n >= 1024 ** 3
    ? `${(n / 1024 ** 3).toFixed(2)} GiB`
    : n >= 1024 ** 2
      ? `${(n / 1024 ** 2).toFixed(1)} MiB`
      : `${n} bytes`;
