-- MySQL dump 10.13  Distrib 5.1.73, for redhat-linux-gnu (x86_64)
--
-- Host: localhost    Database: cluster
-- ------------------------------------------------------
/*!40101 SET NAMES utf8 */;

DROP TABLE IF EXISTS `appliances`;
CREATE TABLE `appliances` (
  `ID` int(11) NOT NULL AUTO_INCREMENT,
  `Name` varchar(32) NOT NULL DEFAULT '',
  `Graph` varchar(64) NOT NULL DEFAULT 'default',
  `Node` varchar(64) NOT NULL DEFAULT '',
  PRIMARY KEY (`ID`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;
INSERT INTO `appliances` VALUES (1,'frontend','default','server'),(2,'compute','default','compute'),(3,'network','default','');

DROP TABLE IF EXISTS `memberships`;
CREATE TABLE `memberships` (
  `ID` int(11) NOT NULL AUTO_INCREMENT,
  `Name` varchar(64) DEFAULT NULL,
  `Appliance` int(11) DEFAULT '0',
  `Distribution` int(11) DEFAULT '1',
  `Public` enum('yes','no') DEFAULT 'no',
  PRIMARY KEY (`ID`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;
INSERT INTO `memberships` VALUES (1,'Frontend',1,1,'no'),(2,'Compute',2,1,'yes'),(3,'Ethernet Switches',3,1,'no');

DROP TABLE IF EXISTS `nodes`;
CREATE TABLE `nodes` (
  `ID` int(11) NOT NULL AUTO_INCREMENT,
  `Site` int(11) NOT NULL DEFAULT '0',
  `Name` varchar(128) DEFAULT NULL,
  `Membership` int(11) DEFAULT '2',
  `CPUs` int(11) NOT NULL DEFAULT '1',
  `Rack` int(11) DEFAULT NULL,
  `Rank` int(11) DEFAULT NULL,
  `Arch` varchar(32) DEFAULT NULL,
  `OS` enum('linux','sunos') NOT NULL DEFAULT 'linux',
  `RunAction` varchar(64) DEFAULT 'os',
  `InstallAction` varchar(64) DEFAULT 'install',
  `Comment` varchar(140) DEFAULT NULL,
  PRIMARY KEY (`ID`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;
INSERT INTO `nodes` VALUES (1,0,'bigfe',1,32,0,0,'x86_64','linux','os','install','the head; don\'t touch'),(2,0,'compute-0-0',2,16,0,0,'x86_64','linux','os','install','uses \\\\share\\x, quoted \"ok\"'),(3,0,'compute-0-1',2,16,0,1,'x86_64','linux','os','install',NULL),(4,0,'network-0-0',3,1,0,0,NULL,'linux','os','install','48-port; top of rack'),(5,0,'compute-0-2',2,16,0,2,'x86_64','linux','os','install','it''s the odd one');

DROP TABLE IF EXISTS `subnets`;
CREATE TABLE `subnets` (
  `ID` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(32) NOT NULL,
  `subnet` varchar(32) NOT NULL,
  `netmask` varchar(32) NOT NULL,
  `mtu` int(11) DEFAULT '1500',
  `dnszone` varchar(64) NOT NULL,
  `servedns` tinyint(1) NOT NULL DEFAULT '0',
  PRIMARY KEY (`ID`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;
INSERT INTO `subnets` VALUES (1,'private','10.1.0.0','255.255.0.0',1500,'local',1),(2,'public','192.0.2.0','255.255.255.0',1500,'example.org',0),(3,'ipmi','10.2.0.0','255.255.0.0',1500,'ipmi',0);

DROP TABLE IF EXISTS `networks`;
CREATE TABLE `networks` (
  `ID` int(11) NOT NULL AUTO_INCREMENT,
  `Node` int(11) DEFAULT NULL,
  `MAC` varchar(64) DEFAULT NULL,
  `IP` varchar(32) DEFAULT NULL,
  `Name` varchar(128) DEFAULT NULL,
  `Device` varchar(32) DEFAULT NULL,
  `Subnet` int(11) DEFAULT NULL,
  `Module` varchar(128) DEFAULT NULL,
  `VlanID` int(11) DEFAULT NULL,
  `Options` varchar(128) DEFAULT NULL,
  `Channel` varchar(128) DEFAULT NULL,
  `disable_kvm` tinyint(1) NOT NULL DEFAULT '0',
  PRIMARY KEY (`ID`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;
INSERT INTO `networks` VALUES (1,1,'00:30:48:fe:00:01','10.1.1.1','bigfe','eth0',1,'e1000e',NULL,NULL,NULL,0),(2,1,'00:30:48:fe:00:02','192.0.2.10','bigfe','eth1',2,'e1000e',NULL,NULL,NULL,0),
(3,2,'00:30:48:c0:00:0f','10.2.255.254','compute-0-0-ipmi','ipmi',3,NULL,NULL,NULL,NULL,0),(4,2,'00:30:48:c0:00:01','10.1.255.254','compute-0-0','eth0',1,'igb',NULL,NULL,NULL,0),
(5,3,NULL,'10.1.255.253','compute-0-1','bond0',1,'bonding',NULL,'\"mode=4 miimon=100\"',NULL,0),(6,3,'00:30:48:c1:00:01',NULL,NULL,'eth0',NULL,'igb',NULL,NULL,'bond0',0),(7,3,'00:30:48:c1:00:02',NULL,NULL,'eth1',NULL,'igb',NULL,NULL,'bond0',0),
(8,4,'00:1b:21:00:00:99','10.1.254.1','network-0-0','eth0',1,NULL,NULL,NULL,NULL,0),(9,5,'00:30:48:c2:00:01','10.1.255.252','compute-0-2','eth0',1,'igb',NULL,NULL,NULL,0);
