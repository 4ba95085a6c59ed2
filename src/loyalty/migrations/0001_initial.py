from tortoise import migrations
from tortoise.migrations import operations as ops
from loyalty.members.models import Channel, Gender, LifecycleStage, MemberStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(description='Principal subject', max_length=128)),
                ('actor_role', fields.CharField(max_length=16)),
                ('action', fields.CharField(description='e.g. member.merge, member.erase', max_length=64)),
                ('target_type', fields.CharField(max_length=32)),
                ('target_id', fields.CharField(max_length=64)),
                ('details', fields.JSONField(default=dict, description='Ids and counts only, no PII', encoder=JSON_DUMPS, decoder=loads)),
                ('request_id', fields.CharField(null=True, max_length=128)),
            ],
            options={'table': 'audit_entry', 'app': 'loyalty', 'indexes': [Index(fields=['target_type', 'target_id'], name='audit_target_idx'), Index(fields=['at'], name='audit_at_idx')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Event',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=64)),
                ('dedupe_key', fields.CharField(unique=True, max_length=191)),
                ('member_id', fields.BigIntField(null=True)),
                ('payload', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('published_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
            ],
            options={'table': 'event', 'app': 'loyalty', 'indexes': [Index(fields=['published_at', 'created_at'], name='event_unpublished_idx')], 'pk_attr': 'id', 'table_description': 'A domain event with a stable id (used for outbound webhooks and streams).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Member',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('display_name', fields.CharField(max_length=64)),
                ('phone', fields.CharField(null=True, unique=True, max_length=20)),
                ('email', fields.CharField(null=True, unique=True, max_length=254)),
                ('birth_date', fields.DateField(null=True)),
                ('birth_month', fields.SmallIntField(null=True)),
                ('birth_day', fields.SmallIntField(null=True)),
                ('gender', fields.CharEnumField(default=Gender.UNDISCLOSED, description='FEMALE: FEMALE\nMALE: MALE\nOTHER: OTHER\nUNDISCLOSED: UNDISCLOSED', enum_type=Gender, max_length=16)),
                ('timezone', fields.CharField(null=True, max_length=64)),
                ('region', fields.CharField(null=True, max_length=64)),
                ('registered_channel', fields.CharEnumField(description='ONLINE_STORE: ONLINE_STORE\nPOS: POS\nAPP: APP\nWECHAT_MINIPROGRAM: WECHAT_MINIPROGRAM\nCONSOLE: CONSOLE\nIMPORT: IMPORT', enum_type=Channel, max_length=24)),
                ('registered_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=MemberStatus.ACTIVE, description='ACTIVE: ACTIVE\nDEACTIVATED: DEACTIVATED\nMERGED: MERGED\nERASED: ERASED', enum_type=MemberStatus, max_length=16)),
                ('merged_into', fields.ForeignKeyField('loyalty.Member', source_field='merged_into_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('lifecycle_stage', fields.CharEnumField(default=LifecycleStage.NEW, description='NEW: NEW\nACTIVE: ACTIVE\nAT_RISK: AT_RISK\nLAPSED: LAPSED', enum_type=LifecycleStage, max_length=16)),
                ('tags', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('total_spend', fields.BigIntField(default=0)),
                ('order_count', fields.IntField(default=0)),
                ('first_order_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_order_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'member', 'app': 'loyalty', 'indexes': [Index(fields=['birth_month', 'birth_day'], name='member_birthday_idx'), Index(fields=['registered_channel', 'id'], name='member_channel_idx')], 'pk_attr': 'id', 'table_description': 'A loyalty member. Money is in minor units (fen), times are UTC.'},
            bases=['Model'],
        ),
    ]
