/** A V2 JSON request for `tinyModel` (x: FP32 [batch, 4]). */
export const tinyRequestBody = (rows = 1): string =>
  JSON.stringify({
    inputs: [
      {
        name: 'x',
        datatype: 'FP32',
        shape: [rows, 4],
        data: Array.from({ length: rows * 4 }, (_, i) => i),
      },
    ],
  });
