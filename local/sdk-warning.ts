// The AWS SDK warns on every process start under Node 20 that future SDK releases will need
// Node 22. The SDK is pinned (package.json), the functions run on Node 22 in Lambda, and the
// local stack and the CLI support Node >= 20.19: the warning tells users nothing they can act on.
// Imported first, for its side effect, by the entry points (`npm start`, `maas`).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
