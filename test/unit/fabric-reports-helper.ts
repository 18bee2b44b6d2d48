/** Reads a health report with the simulator's strict XML reader (independent of the agent's parser). */
import { parseStrictXml, descendant } from '../fabric/strictxml';

const first = descendant;

export function parseHealthStrict(xml: string): { state?: string; subStatus?: string; description?: string } {
  const root = parseStrictXml(xml);
  return { state: first(root, 'State')?.text, subStatus: first(root, 'SubStatus')?.text, description: first(root, 'Description')?.text };
}
