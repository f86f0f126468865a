-- MySQL dump 10.13  Distrib 5.1.73, for redhat-linux-gnu (x86_64)
--
-- Host: localhost    Database: oscar
CREATE TABLE `Groups` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(100) NOT NULL,
  `selected` int(11) DEFAULT '0',
  `type` varchar(100) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
INSERT INTO `Groups` VALUES (1,'oscar_server',0,'package'),(2,'oscar_clients',0,'package');
CREATE TABLE `Images` (
  `architecture` varchar(100) DEFAULT NULL,
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(100) NOT NULL,
  `path` varchar(100) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
INSERT INTO `Images` VALUES ('x86_64',1,'oscarimage','/var/lib/systemimager/images/oscarimage');
CREATE TABLE `Nodes` (
  `cluster_id` int(11) NOT NULL DEFAULT '0',
  `cpu_num` int(11) DEFAULT NULL,
  `dns_domain` varchar(100) DEFAULT NULL,
  `fqdn` varchar(100) DEFAULT NULL,
  `group_id` int(11) NOT NULL DEFAULT '0',
  `hostname` varchar(100) DEFAULT NULL,
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `image_id` int(11) NOT NULL DEFAULT '0',
  `name` varchar(100) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
INSERT INTO `Nodes` VALUES (1,2,'oscardomain','head.oscardomain',1,'head',1,0,'oscar_server'),(1,1,'oscardomain','oscarnode1.oscardomain',2,'oscarnode1',2,1,'oscarnode1'),(1,1,'oscardomain','oscarnode2.oscardomain',2,'oscarnode2',3,1,'oscarnode2'),(1,1,'oscardomain',NULL,2,'oscarnode3',4,1,'oscarnode3');
CREATE TABLE `Nics` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `ip` varchar(100) DEFAULT NULL,
  `mac` varchar(100) DEFAULT NULL,
  `name` varchar(100) DEFAULT NULL,
  `network_id` int(11) DEFAULT NULL,
  `node_id` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
INSERT INTO `Nics` VALUES (1,'10.0.0.1','00:16:3E:00:00:01','eth0',1,1),(2,'10.0.0.2','00:16:3E:00:00:02','eth0',1,2),(3,'10.0.0.3','00:16:3E:00:00:03','eth0',1,3),(4,'10.0.0.4',NULL,'eth0',1,4);
