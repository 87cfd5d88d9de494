#!/usr/bin/env node
// The CLI is TypeScript run as is: register tsx's loader, then load the real entry point.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
