import type { Case } from '../harness/types.js';
import { framingCases } from './f01-framing.js';
import { pingCases } from './f02-ping-pong.js';
import { reservedBitCases } from './f03-reserved-bits.js';
import { opcodeCases } from './f04-opcodes.js';
import { fragmentationCases } from './f05-fragmentation.js';
import { utf8Cases } from './f06-utf8.js';
import { closeCases } from './f07-close.js';
import { limitCases } from './f09-limits.js';
import { miscCases } from './f10-misc.js';
import { deflateCases } from './f12-deflate.js';
import { deflateParamCases } from './f13-deflate-params.js';

export interface Family {
  family: number;
  name: string;
  cases: () => Case[];
}

/** The case families, numbered as in the Autobahn TestSuite (8 and 11 do not exist there either). */
export const FAMILIES: Family[] = [
  { family: 1, name: 'Framing', cases: framingCases },
  { family: 2, name: 'Pings and pongs', cases: pingCases },
  { family: 3, name: 'Reserved bits', cases: reservedBitCases },
  { family: 4, name: 'Reserved opcodes', cases: opcodeCases },
  { family: 5, name: 'Fragmentation', cases: fragmentationCases },
  { family: 6, name: 'UTF-8 handling', cases: utf8Cases },
  { family: 7, name: 'Close handling', cases: closeCases },
  { family: 9, name: 'Limits and performance', cases: limitCases },
  { family: 10, name: 'Miscellaneous (auto-fragmentation)', cases: miscCases },
  { family: 12, name: 'permessage-deflate: payloads', cases: deflateCases },
  { family: 13, name: 'permessage-deflate: parameters', cases: deflateParamCases },
];
