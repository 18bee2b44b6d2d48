/** Our own 4-part agent version (DECISIONS.md D3): above every WALinuxAgent 2.x, never a real WALinuxAgent release. */
export const AGENT_VERSION = '3.0.0.0';
/** Protocol token the fabric keys on (D3). */
export const AGENT_NAME = 'WALinuxAgent';
/** Product name printed on the fourth line of -version. */
export const PRODUCT_NAME = 'waagent-ts';
