//! `/api/v1/admin`: platform administration, admin sessions only. (Quota
//! grants arrive with metering.)

use poem_openapi::OpenApi;
use poem_openapi::param::Query;

use super::ApiTags;
use super::auth::UserDto;
use crate::auth::schemes::SessionToken;
use crate::http::envelope::Reply;
use crate::http::error::{ApiResult, ReadErrors};
use crate::state::AppState;

pub struct AdminApi {
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminApi {
    /// Every user, newest first. Admin session only.
    #[oai(path = "/admin/users", method = "get", operation_id = "adminListUsers")]
    async fn users(
        &self,
        auth: SessionToken,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<UserDto>>, ReadErrors> {
        self.state.require_admin(&auth.0).await?;
        let users = self
            .state
            .store
            .list_users(super::page(page.0, limit.0)?)
            .await?;
        Ok(Reply::page("Users", users.map(UserDto::from)))
    }
}
