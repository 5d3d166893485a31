<?php
/*
 * arbo lab: the shim that lets pfSense 2.7.2's own PHP (installed unchanged
 * under /etc/inc, /etc/rc.*, /usr/local/sbin/pfSsh.php) run under Debian's
 * php-cli inside the lab gateway's chroot. php.ini's auto_prepend_file loads
 * it before every script.
 *
 * The chroot is the machine root, so pfSense's absolute paths (/cf/conf,
 * /tmp/rules.debug, /var/run, ...) are already the machine's own: nothing is
 * rewritten. What pfSense gets from its FreeBSD-only PHP module (pfSense.so,
 * source: github.com/pfsense/FreeBSD-ports devel/php-pfSense-module,
 * pfSense.c) is stubbed below, each stub saying what the real function does
 * and what the lab answers. The lab's interfaces are the emulator's state:
 * /var/run/lab/interfaces once changed, else the iface= lines of
 * /etc/lab-machine (see internal/lab/emu/emu.go).
 *
 * Every stub call is appended to /var/log/lab-php.log, so that a test can see
 * which FreeBSD-only calls a script made.
 */

function lab_php_log($fn, $args = array()) {
	@file_put_contents('/var/log/lab-php.log',
	    $fn . ' ' . json_encode($args) . "\n", FILE_APPEND);
}

/* lab_interfaces(): name => list of "addr/prefix" from the emulator state. */
function lab_interfaces() {
	$out = array('lo0' => array('127.0.0.1/8'));
	$lines = @file('/var/run/lab/interfaces', FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES);
	if ($lines === false) {
		$lines = array();
		foreach ((array)@file('/etc/lab-machine', FILE_IGNORE_NEW_LINES) as $l) {
			if (strncmp($l, 'iface=', 6) == 0) {
				$lines[] = substr($l, 6);
			}
		}
	}
	foreach ($lines as $l) {
		$f = preg_split('/\s+/', trim($l));
		if ($f[0] === '') {
			continue;
		}
		$out[$f[0]] = array_slice($f, 1);
	}
	return $out;
}

function lab_v4mask($bits) {
	return long2ip($bits == 0 ? 0 : (~0 << (32 - $bits)) & 0xffffffff);
}

if (!function_exists('pfSense_interface_listget')) {
	/* Real: the names of all interfaces (getifaddrs(3)), like `ifconfig -l`. */
	function pfSense_interface_listget($flag = 0) {
		return array_keys(lab_interfaces());
	}

	/* Real: every address of one interface as "addr/prefixlen". */
	function pfSense_getall_interface_addresses($if) {
		$i = lab_interfaces();
		return isset($i[$if]) ? $i[$if] : array();
	}

	/*
	 * Real: getifaddrs(3) of one interface: flags, mtu, link address and
	 * 'addrs'/'addrs6' lists of {addr, subnetbits, subnet, broadcast}.
	 */
	function pfSense_get_ifaddrs($if) {
		$i = lab_interfaces();
		if (!isset($i[$if])) {
			return null;
		}
		$r = array('status' => 'up', 'linkstateup' => true, 'mtu' => 1500,
		    'iftype' => ($if == 'lo0' ? 'virtual' : 'ether'),
		    'macaddr' => '00:00:00:00:00:00', 'hwaddr' => '00:00:00:00:00:00',
		    'addrs' => array(), 'addrs6' => array());
		foreach ($i[$if] as $a) {
			list($ip, $bits) = array_pad(explode('/', $a, 2), 2, null);
			if (strpos($ip, ':') !== false) {
				$r['addrs6'][] = array('addr' => $ip, 'subnetbits' => (int)($bits ?? 128));
			} else {
				$bits = (int)($bits ?? 32);
				$r['addrs'][] = array('addr' => $ip, 'subnetbits' => $bits,
				    'subnet' => lab_v4mask($bits));
			}
		}
		return $r;
	}

	/* Real: the first IPv4/IPv6 address and flags of one interface (older API). */
	function pfSense_get_interface_addresses($if) {
		$r = pfSense_get_ifaddrs($if);
		if ($r === null) {
			return null;
		}
		if (!empty($r['addrs'])) {
			$r['ipaddr'] = $r['addrs'][0]['addr'];
			$r['subnetbits'] = $r['addrs'][0]['subnetbits'];
			$r['subnet'] = $r['addrs'][0]['subnet'];
		}
		if (!empty($r['addrs6'])) {
			$r['ipaddr6'] = $r['addrs6'][0]['addr'];
			$r['subnetbits6'] = $r['addrs6'][0]['subnetbits'];
		}
		return $r;
	}

	/* Real: packet/byte counters of one interface (ioctl SIOCGIFDATA). */
	function pfSense_get_interface_stats($if) {
		return array('inpkts' => 0, 'outpkts' => 0, 'inbytes' => 0, 'outbytes' => 0,
		    'inerrs' => 0, 'outerrs' => 0, 'collisions' => 0, 'mtu' => 1500);
	}

	/* Real: SIOCSIFFLAGS on the interface. The lab keeps no flags. */
	function pfSense_interface_flags($if, $flags) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: SIOCSIFMTU. */
	function pfSense_interface_mtu($if, $mtu) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: SIOCGIFMTU. */
	function pfSense_interface_getmtu($if) { return array('mtu' => 1500); }
	/* Real: SIOCSIFCAP. */
	function pfSense_interface_capabilities($if, $caps) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: SIOCIFDESTROY (clone interfaces). */
	function pfSense_interface_destroy($if) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: SIOCSIFNAME. */
	function pfSense_interface_rename($if, $new) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: SIOCAIFADDR. */
	function pfSense_interface_setaddress($if, $addr) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: SIOCDIFADDR. */
	function pfSense_interface_deladdress($if, $addr) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: fsync(2) of a path. */
	function pfSense_fsync($path) { return file_exists($path); }
	/* Real: DIOCKILLSTATES for a host/network pair. */
	function pfSense_kill_states($src, $dst = null, $if = null, $proto = null) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: DIOCKILLSRCNODES. */
	function pfSense_kill_srcstates($src, $dst = null) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: DIOCGETRULES: the loaded rules with counters (status pages). */
	function pfSense_get_pf_rules() { return array(); }
	/* Real: list of IPsec SAs (PF_KEY). The lab has no IPsec. */
	function pfSense_ipsec_list_sa() { return array(); }
	/* Real: captive portal ethernet-rule counters; no captive portal here. */
	function pfSense_pf_cp_flush($anchor, $type) { return true; }
	function pfSense_pf_cp_get_eth_pipes($anchor) { return array(); }
	function pfSense_pf_cp_zerocnt($anchor) { return true; }
	function pfSense_pf_cp_get_eth_rule_counters($anchor) { return array(); }
	function pfSense_pf_cp_get_eth_last_active($anchor) { return array(); }
	/* Real: DIOCCLRRULECTRS on an anchor. */
	function pfSense_pf_anchor_zerocnt($anchor) { return true; }
	/* Real: netgraph node naming (PPP). */
	function pfSense_ngctl_name($a, $b) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: SIOCBRDGADD. */
	function pfSense_bridge_add_member($br, $if) { lab_php_log(__FUNCTION__, func_get_args()); return true; }
	/* Real: vlan(4) create. */
	function pfSense_vlan_create($if, $parent, $tag, $pcp) { lab_php_log(__FUNCTION__, func_get_args()); return $if; }
}

/* FreeBSD's IFF_* flag values (sys/net/if.h), defined by pfSense.so. */
foreach (array('IFF_UP' => 0x1, 'IFF_LINK0' => 0x1000, 'IFF_LINK1' => 0x2000,
    'IFF_LINK2' => 0x4000, 'IFF_PROMISC' => 0x100, 'IFF_NOARP' => 0x80,
    'IFCAP_RXCSUM' => 0x1, 'IFCAP_TXCSUM' => 0x2, 'IFCAP_VLAN_MTU' => 0x8,
    'IFCAP_VLAN_HWTAGGING' => 0x10, 'IFCAP_POLLING' => 0x40, 'IFCAP_TSO' => 0x30,
    'IFCAP_LRO' => 0x400, 'IFCAP_WOL' => 0x4000, 'IFCAP_VLAN_HWFILTER' => 0x10000)
    as $k => $v) {
	if (!defined($k)) {
		define($k, $v);
	}
}
