# Zones are named explicitly (by default <region>a, b and c), so a zone AWS
# adds later never moves or adds subnets, and GPU-poor zones can be avoided.
locals {
  candidate_azs = length(var.availability_zones) > 0 ? var.availability_zones : [for s in ["a", "b", "c"] : "${data.aws_region.current.region}${s}"]
}

data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.candidate_azs
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= var.az_count
      error_message = "Fewer than az_count of the availability zones ${join(", ", local.candidate_azs)} are available: set availability_zones."
    }
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  # Private subnets (tasks, GPU instances) get a sixteenth of the VPC each;
  # public (ALB, NAT) and database subnets a 256th each, from the upper half.
  private_cidrs  = [for i in range(var.az_count) : cidrsubnet(var.cidr_block, 4, i)]
  public_cidrs   = [for i in range(var.az_count) : cidrsubnet(var.cidr_block, 8, 128 + i)]
  database_cidrs = [for i in range(var.az_count) : cidrsubnet(var.cidr_block, 8, 144 + i)]
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = var.name
  }
}

# Nothing may use the default security group: every resource gets its own.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name}-default-unused"
  }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = var.name
  }
}
