/**
 * Generic Linux (provisioning-and-os.md §9): the base of every distro variant. Provisioning, deprovisioning and the
 * daemon call these methods; nothing else runs commands or writes system files.
 */
import { OsBase } from './os';

export class LinuxOS extends OsBase {
}
