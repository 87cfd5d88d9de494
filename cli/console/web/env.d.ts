/** esbuild bundles the CSS a module imports into app.css. */
declare module '*.css';
