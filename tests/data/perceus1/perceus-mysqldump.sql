-- MySQL dump 10.13  Distrib 5.0.95, for redhat-linux-gnu (x86_64)
--
-- Host: localhost    Database: perceus
/*!40101 SET NAMES utf8 */;

DROP TABLE IF EXISTS `perceus_hostname`;
CREATE TABLE `perceus_hostname` (
  `nodeid` varchar(18) NOT NULL,
  `value` varchar(128) default NULL,
  PRIMARY KEY  (`nodeid`)
) ENGINE=MyISAM DEFAULT CHARSET=latin1;

LOCK TABLES `perceus_hostname` WRITE;
INSERT INTO `perceus_hostname` VALUES ('00:1E:67:00:00:00','n0000'),('00:1E:67:00:00:01','n0001');
UNLOCK TABLES;

CREATE TABLE `perceus_enabled` (`nodeid` varchar(18) NOT NULL, `value` varchar(128) default NULL, PRIMARY KEY (`nodeid`));
INSERT INTO `perceus_enabled` VALUES ('00:1E:67:00:00:00','1'),('00:1E:67:00:00:01','');

CREATE TABLE `perceus_desc` (`nodeid` varchar(18) NOT NULL, `value` varchar(128) default NULL);
INSERT INTO `perceus_desc` (`value`, `nodeid`) VALUES ('it\'s \"quoted\", (parens); semi','00:1E:67:00:00:00'),(NULL,'00:1E:67:00:00:01');

CREATE TABLE `perceus_ipaddr` (`nodeid` varchar(18) NOT NULL, `value` varchar(128) default NULL);
INSERT INTO `perceus_ipaddr` VALUES ('00:1E:67:00:00:00','167772161');

CREATE TABLE `perceus_status` (`nodeid` varchar(18) NOT NULL, `value` varchar(128) default NULL);

CREATE TABLE `unrelated` (`id` int);
INSERT INTO `unrelated` VALUES (1),(2);
