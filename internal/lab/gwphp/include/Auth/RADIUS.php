<?php
/*
 * Lab shim for PEAR's Auth/RADIUS.php (net/pear-Auth_RADIUS on pfSense).
 * captiveportal.inc:31 requires it for RADIUS accounting; the lab has no
 * RADIUS server, so it only needs to load. Its classes are used inside
 * functions that the gateway paths arbo drives never call.
 */
