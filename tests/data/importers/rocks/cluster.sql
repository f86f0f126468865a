-- MySQL dump 10.11
--
-- Host: localhost    Database: cluster
-- ------------------------------------------------------
-- Server version	5.0.77

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET NAMES utf8 */;

--
-- Table structure for table `memberships`
--

DROP TABLE IF EXISTS `memberships`;
CREATE TABLE `memberships` (
  `ID` int(11) NOT NULL auto_increment,
  `Name` varchar(64) default NULL,
  `Appliance` int(11) default '0',
  `Distribution` int(11) default '1',
  `Public` enum('yes','no') default 'no',
  PRIMARY KEY  (`ID`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;

LOCK TABLES `memberships` WRITE;
INSERT INTO `memberships` VALUES (1,'Frontend',1,1,'no'),(2,'Compute',2,1,'yes'),(3,'Ethernet Switches',3,1,'no');
UNLOCK TABLES;

CREATE TABLE `nodes` (
  `ID` int(11) NOT NULL auto_increment,
  `Site` int(11) NOT NULL default '0',
  `Name` varchar(128) default NULL,
  `Membership` int(11) default '2',
  `CPUs` int(11) NOT NULL default '1',
  `Rack` int(11) default NULL,
  `Rank` int(11) default NULL,
  `Comment` varchar(128) default NULL,
  PRIMARY KEY  (`ID`),
  KEY `Name` (`Name`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;

INSERT INTO `nodes` VALUES (1,0,'rocks-fe',1,2,0,0,NULL),
(2,0,'compute-0-0',2,4,0,0,'rack; \'A\''),
(3,0,'compute-0-1',2,4,0,1,NULL),(4,0,'network-0-0',3,1,0,0,'switch');

CREATE TABLE `subnets` (
  `ID` int(11) NOT NULL auto_increment,
  `name` varchar(32) NOT NULL,
  `subnet` varchar(32) NOT NULL,
  `netmask` varchar(32) NOT NULL,
  PRIMARY KEY  (`ID`)
) ENGINE=MyISAM;
INSERT INTO `subnets` VALUES (1,'private','10.1.0.0','255.255.0.0'),(2,'public','192.168.10.0','255.255.255.0');

CREATE TABLE `networks` (
  `ID` int(11) NOT NULL auto_increment,
  `Node` int(11) default NULL,
  `MAC` varchar(64) default NULL,
  `IP` varchar(32) default NULL,
  `Name` varchar(128) default NULL,
  `Device` varchar(32) default NULL,
  `Subnet` int(11) default NULL,
  `Module` varchar(128) default NULL,
  PRIMARY KEY  (`ID`)
) ENGINE=MyISAM;
INSERT INTO `networks` VALUES (1,1,'00:0c:29:aa:00:01','10.1.1.1','rocks-fe','eth0',1,'e1000'),(2,1,'00:0c:29:aa:00:02','192.168.10.5','rocks-fe','eth1',2,'e1000'),
(3,2,'00:0c:29:5b:7e:a2',NULL,NULL,'eth1',2,NULL),(4,2,'00:0c:29:5b:7e:a1','10.1.255.254','compute-0-0','eth0',1,'e1000'),
(5,3,'00:0c:29:5b:7e:b1','10.1.255.253','compute-0-1','eth0',1,'e1000'),(6,4,'00:1b:21:00:00:99','10.1.255.1','network-0-0','eth0',1,NULL);
