<?php
/*
 * Lab shim for PEAR's XML/RPC2/Client.php (net/pear-XML_RPC2 on pfSense).
 * xmlrpc_client.inc:23 requires it for HA config sync (XMLRPC to a peer);
 * the lab has no HA peer, so it only needs to load.
 */
