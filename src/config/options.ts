/**
 * Every option of /etc/waagent.conf the agent knows: name, type, code default, meaning
 * (provisioning-and-os.md §2.3–§2.5, DECISIONS.md). README's configuration table is checked against this table.
 */
export type OptionType = 'switch' | 'string' | 'int';
export interface OptionDef {
  name: string;
  type: OptionType;
  /** Code default (what applies when the key is absent). `null` = None. */
  def: boolean | string | number | null;
  meaning: string;
}

const sw = (name: string, def: boolean, meaning: string): OptionDef => ({ name, type: 'switch', def, meaning });
const st = (name: string, def: string | null, meaning: string): OptionDef => ({ name, type: 'string', def, meaning });
const int = (name: string, def: number | null, meaning: string): OptionDef => ({ name, type: 'int', def, meaning });

export const OPTIONS: readonly OptionDef[] = [
  sw('Provisioning.Enabled', true, 'Run the built-in provisioning from ovf-env.xml; n = only mark provisioned and report Ready (or cloud-init mode).'),
  sw('Provisioning.UseCloudInit', false, 'With Provisioning.Enabled=n: wait for cloud-init to provision, then report Ready.'),
  st('Provisioning.Agent', 'auto', 'auto, waagent, cloud-init or disabled; consulted only when Provisioning.Enabled is absent (D29).'),
  sw('Provisioning.DeleteRootPassword', false, "Lock root's password during provisioning and deprovisioning."),
  sw('Provisioning.RegenerateSshHostKeyPair', false, 'Delete all SSH host keys and generate fresh ones at provisioning.'),
  st('Provisioning.SshHostKeyPairType', 'rsa', 'Host key type: rsa, dsa, ecdsa, ed25519 or auto (all types; fingerprint of the RSA key).'),
  sw('Provisioning.MonitorHostName', false, 'Watch the host name and republish it on change.'),
  int('Provisioning.MonitorHostNamePeriod', 30, 'Seconds between host-name checks.'),
  sw('Provisioning.DecodeCustomData', false, 'Base64-decode CustomData before saving it.'),
  sw('Provisioning.ExecuteCustomData', false, 'Decode, save and execute CustomData after provisioning.'),
  st('Provisioning.PasswordCryptId', '6', 'crypt(3) method for the password hash: 1 (MD5), 5 (SHA-256), 6 (SHA-512).'),
  int('Provisioning.PasswordCryptSaltLength', 10, 'Salt length of the password hash, in characters.'),
  sw('Provisioning.AllowResetSysUser', false, 'Allow setting the password of a system user (UID below UID_MIN).'),
  sw('ResourceDisk.Format', false, 'Format and mount the resource disk.'),
  st('ResourceDisk.Filesystem', 'ext3', 'File system of the resource disk (mkfs.<value>; ufs on BSD).'),
  st('ResourceDisk.MountPoint', '/mnt/resource', 'Mount point of the resource disk.'),
  st('ResourceDisk.MountOptions', null, 'Options passed to mount -o for the resource disk.'),
  sw('ResourceDisk.EnableSwap', false, 'Create a swap file on the resource disk.'),
  int('ResourceDisk.SwapSizeMB', 0, 'Size of the swap file in MiB.'),
  sw('ResourceDisk.EnableSwapEncryption', false, 'FreeBSD: encrypt the swap with geli onetime.'),
  sw('Logs.Verbose', false, 'Log at VERBOSE level to the log file.'),
  sw('Logs.Console', true, 'Mirror log lines to /dev/console until provisioning completes.'),
  sw('OS.EnableFIPS', false, 'Set OPENSSL_FIPS=1 in the environment of commands the agent runs.'),
  sw('OS.EnableFirewall', false, 'Create firewall rules that let only root talk to the wire server.'),
  int('OS.EnableFirewallPeriod', 300, 'Seconds between firewall re-checks.'),
  sw('OS.EnableRDMA', false, 'Set up the RDMA driver.'),
  sw('OS.UpdateRdmaDriver', false, 'Ubuntu: allow a kernel update for RDMA.'),
  sw('OS.CheckRdmaDriver', false, 'Enable RDMA handling.'),
  st('OS.RootDeviceScsiTimeout', null, "Seconds written to each SCSI disk's timeout; None leaves it alone."),
  int('OS.RootDeviceScsiTimeoutPeriod', 30, 'Seconds between SCSI timeout checks.'),
  st('OS.OpensslPath', '/usr/bin/openssl', 'openssl binary; parsed and shown only, no code path needs it (D2).'),
  st('OS.SshDir', '/etc/ssh', 'Directory of sshd_config and the host keys.'),
  st('OS.SshdConfigPath', null, 'Overrides <OS.SshDir>/sshd_config (BIG-IP).'),
  int('OS.SshClientAliveInterval', 180, 'Value written as ClientAliveInterval in sshd_config.'),
  st('OS.HomeDir', '/home', 'Substituted for $HOME in SSH key paths.'),
  st('OS.PasswordPath', '/etc/shadow', 'File edited to lock the root password (Linux).'),
  st('OS.SudoersDir', '/etc/sudoers.d', 'Directory of the waagent sudoers drop-in.'),
  sw('OS.AllowHTTP', false, 'Accepted and ignored: the agent always has TLS and never downgrades.'),
  int('OS.RemovePersistentNetRulesPeriod', 30, 'Seconds between checks of persistent network udev rules.'),
  int('OS.MonitorDhcpClientRestartPeriod', 30, 'Seconds between DHCP client restart checks.'),
  st('Lib.Dir', '/var/lib/waagent', 'Agent state directory (mode 0700); extensions rely on /var/lib/waagent.'),
  st('DVD.MountPoint', '/mnt/cdrom/secure', 'Where the provisioning DVD is mounted.'),
  st('Pid.File', '/var/run/waagent.pid', 'PID file of the daemon.'),
  st('Extension.LogDir', '/var/log/azure', 'Root of the extension logs.'),
  sw('Extensions.Enabled', true, 'Process VM extensions.'),
  int('Extensions.GoalStatePeriod', 6, 'Seconds between goal-state polls.'),
  sw('Extensions.WaitForCloudInit', false, 'Wait for cloud-init to finish before the first extension.'),
  int('Extensions.WaitForCloudInitTimeout', 3600, 'Bound of that wait, in seconds.'),
  st('HttpProxy.Host', null, 'Proxy host for storage traffic; overrides http_proxy/https_proxy.'),
  int('HttpProxy.Port', null, 'Proxy port.'),
  sw('DetectScvmmEnv', false, 'Look for SCVMM media at start.'),
  sw('LBProbeResponder', true, "Answer load-balancer probes on the goal state's LBProbePorts port."),
  sw('AutoUpdate.Enabled', true, 'Agent self-update: accepted and ignored (D4).'),
  st('AutoUpdate.GAFamily', 'Prod', 'Agent family: ignored (D4).'),
  int('Autoupdate.Frequency', 3600, 'Seconds: ignored (D4).'),
  sw('EnableOverProvisioning', true, 'Hold extension processing while the artifacts profile says onHold.'),
  st('Protocol.EndpointDiscovery', 'dhcp', 'dhcp, or anything else to skip DHCP and use the cached endpoint or 168.63.129.16.'),
];

/** Keys seen in shipped samples that are accepted silently (§2.5). */
export const SILENT_KEYS: readonly string[] = [
  'Network.Interface', 'Role.StateConsumer', 'Role.ConfigurationConsumer', 'Role.TopologyConsumer', 'Home.Dir',
];

export const OPTION_BY_NAME: ReadonlyMap<string, OptionDef> = new Map(OPTIONS.map((o) => [o.name, o]));
